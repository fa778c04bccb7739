"""Pure image and label code shared by training, export and the services (no HTTP, no Triton)."""
