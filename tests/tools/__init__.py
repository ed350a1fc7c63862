"""Developer tools that run outside the test venv (each says how it is run)."""
