"""HTTP: one module per resource, plus the shared parts (routing, auth, envelope, errors)."""
