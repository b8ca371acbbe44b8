"""The v6flow web UI: its static files (plain ES modules, no build step) as package data.

v6flow-server serves them at ``/`` (``v6flow_server.ui``), found through
``importlib.resources.files("v6flow_ui")``; this module has no code.
"""
