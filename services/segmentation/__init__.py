"""Segmentation service: person/background and 7-class fashion parsing (port 8080)."""
