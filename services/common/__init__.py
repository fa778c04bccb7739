"""What every service shares: settings, errors, image I/O, the Triton client, metrics, the app factory."""
