"""SLOs: per-item outcomes, minute and hour rollups, figures (budget, burn rates), the periodic
evaluation and the API."""
