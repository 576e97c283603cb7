"""Storage backends: where metadata, artifacts and processes live."""
