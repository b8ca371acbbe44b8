"""Runs inside the reference venv: account calls of the unmodified vantage6 4.15.2 UserClient.

Usage: python reference_accounts.py COMMAND HOST PORT ARGS...
  login USER PASSWORD [CODE]        authenticate (the QR text it prints is parsed)
  change USER PASSWORD NEW          util.change_my_password after authenticate
  lost (username|email) NAME        util.reset_my_password
  set TOKEN PASSWORD                util.set_my_password
  lost2fa USERNAME PASSWORD         util.reset_two_factor_auth
  set2fa TOKEN                      util.set_two_factor_auth (prints a QR code)
Prints one JSON line as its last line.
"""

import contextlib
import io
import json
import re
import sys

from vantage6.client import UserClient

SECRET = re.compile(r"manually to your authenticator app: (\S+)")


def printed_secret(text):
    found = SECRET.search(text)
    return found.group(1) if found else None


command, host, port, *args = sys.argv[1:]
client = UserClient(f"http://{host}", int(port), "/api", log_level="critical")
printed = io.StringIO()
out = {}
with contextlib.redirect_stdout(printed):
    if command == "login":
        username, password, *code = args
        try:
            client.authenticate(username, password, mfa_code=code[0] if code else None)
            out["authenticated"] = client.whoami is not None
        except Exception as exc:  # what the client raises is the point of the test
            out["error"] = [type(exc).__name__, str(exc)]
    elif command == "change":
        username, password, new = args
        client.authenticate(username, password)
        out["result"] = client.util.change_my_password(password, new)
    elif command == "lost":
        kind, name = args
        out["result"] = client.util.reset_my_password(**{kind: name})
    elif command == "set":
        token, password = args
        out["result"] = client.util.set_my_password(token, password)
    elif command == "lost2fa":
        username, password = args
        out["result"] = client.util.reset_two_factor_auth(password, username=username)
    elif command == "set2fa":
        (token,) = args
        out["result"] = client.util.set_two_factor_auth(token)
    else:
        raise SystemExit(f"unknown command {command}")
out["printed_secret"] = printed_secret(printed.getvalue())
print(json.dumps(out))
