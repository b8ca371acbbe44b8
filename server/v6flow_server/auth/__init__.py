"""Authentication and authorization: passwords, tokens, principals, permissions as data."""
