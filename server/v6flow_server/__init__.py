"""The v6flow central server: a FastAPI service wire-compatible with the vantage6 v4 server.

Build it with :func:`v6flow_server.app.create_app`; start it with ``v6flow server start``.
"""
