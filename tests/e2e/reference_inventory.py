"""Runs inside the reference venv: every public method of the unmodified UserClient.

Walks a ``UserClient`` (made offline: the constructor makes no request) and each sub-client
it holds, recursively (``store.role`` …), and prints one JSON line
``{"version": <vantage6-client version>, "methods": ["authenticate", "task.list", …]}``.
A method is a public function, static or class method of the object's class (inherited ones
included); properties and nested classes are not methods.
"""

import inspect
import json

from vantage6.client import UserClient, __version__
from vantage6.common.client.client_base import ClientBase


def methods(obj):
    names = []
    for name in dir(type(obj)):
        if name.startswith("_"):
            continue
        attr = inspect.getattr_static(type(obj), name)
        if isinstance(attr, (staticmethod, classmethod)) or inspect.isfunction(attr):
            names.append(name)
    return names


def walk(obj, prefix, seen):
    found = [prefix + name for name in methods(obj)]
    for name, value in sorted(vars(obj).items()):
        if isinstance(value, ClientBase.SubClient) and id(value) not in seen:
            seen.add(id(value))
            found += walk(value, f"{prefix}{name}.", seen)
    return found


client = UserClient("http://127.0.0.1", 1, "/api", log_level="critical")
print(json.dumps({"version": __version__, "methods": sorted(walk(client, "", set()))}))
