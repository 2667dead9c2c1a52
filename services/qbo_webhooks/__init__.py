"""QBO webhook receiver (POST /webhooks/qbo, port 8001)."""
