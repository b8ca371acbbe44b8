"""Runs inside the reference venv: a sequence of calls on one unmodified 4.15.2 UserClient.

Usage: python reference_calls.py SERVER_URL USER PASSWORD CALLS_JSON
  SERVER_URL  e.g. http://127.0.0.1:5000/api (host, port and API path are split off it)
  USER        username to authenticate with, or "-" to make the calls without logging in
  CALLS_JSON  [[dotted_name, args, kwargs], ...]: ``client.<dotted_name>(*args, **kwargs)``;
              a dotted name that is not callable is read instead (``"token"``,
              ``"whoami.organization_id"``); an argument ``{"$client": "request"}`` is that
              attribute of the client (for ``wait_for_task_completion``).
Prints one JSON line: per call ``{"value": ...}`` or ``{"error": [type, message]}``, with
``"printed"``, what the call wrote to stdout.
"""

import contextlib
import io
import json
import sys
from urllib.parse import urlsplit

from vantage6.client import UserClient

url, username, password, calls = sys.argv[1:5]
parts = urlsplit(url)
client = UserClient(f"{parts.scheme}://{parts.hostname}", parts.port, parts.path or "/api",
                    log_level="critical")
if username != "-":
    client.authenticate(username, password)


def resolve(dotted):
    target = client
    for part in dotted.split("."):
        target = getattr(target, part)
    return target


def argument(value):
    if isinstance(value, dict) and set(value) == {"$client"}:
        return resolve(value["$client"])
    return value


answers = []
for dotted, args, kwargs in json.loads(calls):
    printed = io.StringIO()
    answer = {}
    with contextlib.redirect_stdout(printed):
        try:
            target = resolve(dotted)
            if callable(target):
                value = target(*[argument(a) for a in args],
                               **{k: argument(v) for k, v in kwargs.items()})
            else:
                value = target
            answer["value"] = value
        except Exception as exc:  # what the client raises is what the test looks at
            answer["error"] = [type(exc).__name__, str(exc)]
    answer["printed"] = printed.getvalue()
    answers.append(answer)
print(json.dumps(answers, default=repr))
