"""Replay: a dead letter POSTed again to its target system, safely and on the record.

preview (what would be sent) → requests (one, or a selection in business order) → queue →
delivery (claimed under a lease, per-system slots) → outcomes (rows, audit, a trace event);
sweep is the safety net that beat runs."""
