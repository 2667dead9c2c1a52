"""Re-Leased sandbox: a local stand-in for our Re-Leased API contract (docs/released_sandbox.md)."""
