"""Retention of monitoring data (rollups, deliveries, replays) and the run over every layer."""
