"""Email: the outbox, its templates, and the senders that deliver it (console, file, smtp, ses)."""
