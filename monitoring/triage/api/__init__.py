"""Dead-letter API: report, list, act, replay, bulk actions and groups."""
