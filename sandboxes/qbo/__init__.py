"""A faithful local stand-in for QuickBooks Online: API, OAuth, signed webhooks and faults.

Used by tests, benchmarks and the demo; never needed in production. See docs/qbo_sandbox.md.
"""
