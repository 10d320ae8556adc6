"""Dashboards for plant supervisors: the control room, plant overview, wall screen, SLO page."""
