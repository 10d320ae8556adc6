"""The dead-letter inbox: filters and groups, impact ranking, states, assignment, notes and bulk
actions."""
