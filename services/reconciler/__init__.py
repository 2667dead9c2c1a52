"""The reconciler: CDC, polling and change-feed backstop for lost webhooks."""
