"""Runs inside the reference venv: one call of the unmodified vantage6 4.15.2 UserClient.

Usage: python reference_admin_call.py HOST PORT USER PASSWORD RESOURCE METHOD KWARGS_JSON
Logs in as USER, calls ``client.<RESOURCE>.<METHOD>(**KWARGS)`` and prints one JSON line:
{"result": <what the call returned>, "whoami": {"id", "organization_id"}}.
"""

import json
import sys

from vantage6.client import UserClient

host, port, username, password, resource, method, kwargs = sys.argv[1:8]
client = UserClient(host, int(port), "/api", log_level="critical")
client.authenticate(username, password)
client.setup_encryption(None)
result = getattr(getattr(client, resource), method)(**json.loads(kwargs))
whoami = {"id": client.whoami.id_, "organization_id": client.whoami.organization_id}
print(json.dumps({"result": result, "whoami": whoami}))
