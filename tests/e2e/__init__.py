"""End-to-end tests that drive a real, unmodified Firefox ESR against a real Foxden server."""
