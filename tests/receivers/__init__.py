"""Local receivers on 127.0.0.1 that tests start and inspect: a replay target, SMTP, webhooks."""
