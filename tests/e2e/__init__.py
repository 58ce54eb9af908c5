"""End-to-end tests that drive real third-party IRC clients against the server."""
