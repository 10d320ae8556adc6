"""SLO status, history and stuck transactions for other software."""
