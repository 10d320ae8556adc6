"""Catalog API: plants, systems and flows by code."""
