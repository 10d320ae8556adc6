"""Transactions: search, the timeline page, stuck marking."""
