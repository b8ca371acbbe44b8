"""Runs inside the reference venv: the unmodified vantage6 4.15.2 UserClient, encrypted.

Usage: python reference_encrypted_client.py HOST PORT USER PASSWORD KEY_FILE COLLAB_ID ORG_IDS
       IMAGE INPUT_JSON
Prints one JSON line: {"task_id", "status", "results": [decoded JSON per run]}.
"""

import json
import sys

from vantage6.client import UserClient

host, port, username, password, key_file, collab_id, org_ids, image, input_json = sys.argv[1:10]
client = UserClient(host, int(port), "/api", log_level="error")
client.authenticate(username, password)
client.setup_encryption(key_file)
task = client.task.create(
    collaboration=int(collab_id),
    organizations=[int(o) for o in org_ids.split(",")],
    name="reference-encrypted-task",
    image=image,
    description="created by the unmodified vantage6-client 4.15.2 with setup_encryption",
    input_=json.loads(input_json),
    databases=[{"label": "default"}],
)
results = client.wait_for_results(task["id"])
status = client.task.get(task["id"])["status"]
decoded = [json.loads(item["result"]) for item in results["data"]]
print(json.dumps({"task_id": task["id"], "status": status, "results": decoded}))
