"""Consumer: the sync engine, direction released_to_qbo."""
