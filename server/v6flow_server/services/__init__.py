"""The rules of the server, one module per resource; no FastAPI imports here."""
