"""Container runtimes of the node (Docker in production)."""
