"""``wrap_algorithm()``: the entry point of every algorithm container (CONTRACT §1.2-1.7).

It reads ``PKG_NAME`` (set by the Dockerfile, not encoded), decodes every env var in place,
reads ``INPUT_FILE`` (``{"method", "args", "kwargs"}``), calls the method of the package and
writes its JSON return value to ``OUTPUT_FILE``. Everything below raises ``v6flow.errors``
types; only :func:`wrap_algorithm` turns them into exit code 1 with the traceback on stderr.

A method that the package does not have may be a Prefect flow listed in
``V6FLOW_CENTRAL_FLOWS``: it then runs as the central task (:mod:`v6flow.algorithm.central`).

The return value is serialised *before* ``OUTPUT_FILE`` is opened, so a non-JSON return value
leaves the file untouched (v4 truncated it first).
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from v6flow.algorithm import central
from v6flow.algorithm._env import decode_environ, require_env
from v6flow.errors import (
    AlgorithmError,
    DeserializationError,
    MethodFailed,
    MethodNotFound,
    MissingEnvironment,
    OutputError,
)
from v6flow.wire import json_from_bytes, json_to_bytes

log = logging.getLogger("v6flow.algorithm")


def load_input(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate the input file.

    Raises:
        DeserializationError: the file is not a UTF-8 JSON object with a string ``method``.
        MissingEnvironment: the file does not exist.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise MissingEnvironment(f"INPUT_FILE ({path}: {exc.strerror})") from exc
    value = json_from_bytes(raw)
    if not isinstance(value, dict) or not isinstance(value.get("method"), str):
        raise DeserializationError(
            "algorithm input must be a JSON object with a string 'method' (and optional "
            "'args' list and 'kwargs' object)"
        )
    return value


def run_method(input_: Mapping[str, Any], package: str) -> Any:
    """Import ``package`` and call ``input_["method"](*args, **kwargs)``.

    A name the package lacks is looked up among the central flows of ``V6FLOW_CENTRAL_FLOWS``
    and run by :func:`v6flow.algorithm.central.run_central_flow`; a flow declared there as
    ``module:name`` is run without importing the package at all.

    Raises:
        AlgorithmError: the package (or a central flow module) cannot be imported.
        MethodNotFound: neither the package nor a central flow module has such a callable.
        MethodFailed: the method raised (chained); v6flow ``AlgorithmError`` s raised by the
            decorators (missing env, unreadable data) pass through unchanged.
    """
    name = str(input_["method"])
    args = list(input_.get("args") or [])
    kwargs = dict(input_.get("kwargs") or {})
    method: Any = None
    flow = central.declared_flow(name)  # declared ``module:name``: the package is not needed
    if flow is None:
        try:
            module = importlib.import_module(package)
        except ImportError as exc:
            raise AlgorithmError(f"cannot import algorithm package {package!r}: {exc}") from exc
        method = getattr(module, name, None)
        flow = central.find_central_flow(name) if method is None else None
    if flow is not None:
        log.info("running flow %s as the central task (%s)", name, flow.plan.mode)
        method = functools.partial(central.run_central_flow, flow, args, kwargs)
        args, kwargs = [], {}
    elif callable(method):
        log.info("calling %s.%s", package, name)
    else:
        where = ", ".join([package, *central.central_flow_modules()])
        raise MethodNotFound(f"no function or flow {name!r} in {where}")
    try:
        return method(*args, **kwargs)
    except AlgorithmError:
        raise
    except Exception as exc:
        raise MethodFailed(name, exc) from exc


def write_output(value: Any, path: str | os.PathLike[str]) -> None:
    """Serialise ``value`` to JSON first, then write it to ``path``.

    Raises:
        OutputError: the value is not JSON-serialisable (the file is left untouched).
    """
    try:
        payload = json_to_bytes(value)
    except DeserializationError as exc:
        raise OutputError(
            f"the algorithm returned a {type(value).__name__}, which is not JSON-serialisable; "
            f"return dicts, lists, strings, numbers, booleans or None ({exc})"
        ) from exc
    Path(path).write_bytes(payload)


def run_from_environ() -> None:
    """Do the whole wrapper job from ``os.environ`` (raises instead of exiting).

    Raises:
        MissingEnvironment: ``PKG_NAME``, ``INPUT_FILE`` or ``OUTPUT_FILE`` is missing.
        V6FlowError: anything :func:`load_input`, :func:`run_method` or
            :func:`write_output` raises.
    """
    package = os.environ.get("PKG_NAME")
    if not package:
        raise MissingEnvironment("PKG_NAME (set it in the Dockerfile: ENV PKG_NAME=<package>)")
    decode_environ()
    input_ = load_input(require_env("INPUT_FILE"))
    output_file = require_env("OUTPUT_FILE")
    result = run_method(input_, package)
    write_output(result, output_file)
    log.info("wrote the result of %s to %s", input_["method"], output_file)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()} > {record.getMessage()}"


def wrap_algorithm(log_traceback: bool = True) -> None:
    """Run the algorithm method named in ``INPUT_FILE``; exit 1 on any error.

    Args:
        log_traceback: Print the traceback on stderr (set False if error messages could leak
            sensitive data; the one-line error is always printed).
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_Formatter())
    root = logging.getLogger("v6flow")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    propagates, root.propagate = root.propagate, False  # a flow's Prefect logs the root too
    try:
        run_from_environ()
    except Exception as exc:
        sys.stdout.flush()
        if log_traceback:
            traceback.print_exc(file=sys.stderr)
        sys.stderr.write(f"error > {type(exc).__name__}: {exc}\n")
        sys.stderr.flush()
        sys.exit(1)
    finally:
        root.removeHandler(handler)
        root.propagate = propagates
