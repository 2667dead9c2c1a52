"""The sync engine (see docs/architecture.md): ports, context, shared steps, dependencies and
routes at the core, one module or package per entity holding both directions."""
