"""Re-Leased webhook receiver (POST /webhooks/released, port 8002)."""
