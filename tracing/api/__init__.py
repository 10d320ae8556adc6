"""Transactions API: the filtered list and one transaction with its events."""
