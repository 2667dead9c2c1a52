"""Consumer: the sync engine, direction qbo_to_released."""
