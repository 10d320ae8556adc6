"""Ingestion: the event contract, the batch pipeline, correlation, and the HTTP door."""
