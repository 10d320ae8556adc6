"""The plant simulator: scenario data, journeys with injected faults, and the sender."""
