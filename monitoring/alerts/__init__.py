"""Alerts: conditions per rule kind, the lifecycle (fire, repeat, resolve), routing and
deliveries through channels."""
