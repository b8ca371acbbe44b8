"""Runs inside the reference venv: the unmodified vantage6 4.15.2 UserClient end to end.

Usage: python reference_user_client.py HOST PORT USER PASSWORD COLLAB_ID ORG_IDS IMAGE INPUT_JSON
Prints one JSON line: {"task_id", "version", "results": [decoded JSON per run], "status"}.
"""

import json
import sys

from vantage6.client import UserClient

host, port, username, password, collab_id, org_ids, image, input_json = sys.argv[1:9]
client = UserClient(host, int(port), "/api", log_level="error")
client.authenticate(username, password)
client.setup_encryption(None)
task = client.task.create(
    collaboration=int(collab_id),
    organizations=[int(o) for o in org_ids.split(",")],
    name="reference-client-task",
    image=image,
    description="created by the unmodified vantage6-client 4.15.2",
    input_=json.loads(input_json),
    databases=[{"label": "default"}],
)
results = client.wait_for_results(task["id"])
status = client.task.get(task["id"])["status"]
version = client.util.get_server_version()
decoded = [json.loads(item["result"]) for item in results["data"]]
print(json.dumps({"task_id": task["id"], "version": version, "results": decoded, "status": status}))
