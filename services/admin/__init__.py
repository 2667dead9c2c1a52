"""The admin service: token-protected HTTP API for connections and the QBO connect flow."""
