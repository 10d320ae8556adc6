"""Alert channels, rules and alerts for admins and other software."""
