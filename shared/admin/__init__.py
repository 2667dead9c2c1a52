"""The admin service's logic: connections, the QBO connect flow, per-connection settings."""
