"""Operating on clusters: `submit.py` (Ray Jobs client, token auth), `schedule.py` (cron slots -> runs), `history.py` (slots and run history), `credentials.py` (what counts as a secret)."""
