"""Logging of every v6flow process, configured once at its entry point (structlog).

``configure_logging`` is called by ``v6flow server start``, ``v6flow node start`` and the
other commands before they log anything. It gives:

- JSON lines when the stream is not a terminal (services, containers, CI), the console
  renderer otherwise;
- ISO timestamps in UTC, the level, and whatever ``bind_contextvars`` bound (``request_id``,
  ``node``, ``run_id``…);
- the redaction processor :func:`redact_secrets` (values of keys that look like secrets, bearer
  tokens and URL passwords inside strings);
- the standard library's loggers (uvicorn, alembic, httpx, docker) through the same chain, so
  their lines are rendered and redacted the same way. Chatty libraries stay at WARNING unless
  the level is DEBUG.

Examples:
    >>> configure_logging("info")                                     # doctest: +SKIP
    >>> structlog.get_logger().info("login", api_key="9f1c…")          # doctest: +SKIP
    {"api_key": "***", "event": "login", "level": "info", "timestamp": "…Z"}
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

#: A key whose (lower-cased) name contains one of these has its value replaced.
SECRET_KEY_PARTS = ("token", "api_key", "apikey", "password", "passwd", "authorization",
                    "secret", "cookie")
REDACTED = "***"
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]+=*")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s/]+@")
#: Libraries that log every request or step at INFO; they stay at WARNING unless debugging.
#: (``uvicorn``: the node's proxy; the server passes its level to ``uvicorn.run``, which sets
#: it on ``uvicorn.error`` itself, so the server still logs its start and stop.)
QUIET_LIBRARIES = ("alembic", "httpx", "httpcore", "docker", "urllib3", "asyncio", "uvicorn")
#: Loggers that libraries may give handlers of their own (uvicorn's and Prefect's logging
#: configurations do): they lose them and propagate to the one root handler.
ROUTED_LIBRARIES = ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic", "httpx", "docker")
LEVELS = ("debug", "info", "warning", "error")


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and any(part in key.lower() for part in SECRET_KEY_PARTS)


def redact_text(text: str) -> str:
    """Hide bearer tokens and the password of ``scheme://user:password@host`` URLs in text."""
    return _URL_PASSWORD.sub(rf"\g<1>{REDACTED}@", _BEARER.sub(rf"\g<1>{REDACTED}", text))


def _redact(key: object, value: Any) -> Any:
    if _is_secret_key(key) and value is not None:
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: _redact(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(None, item) for item in value]
    return value


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: never log a secret.

    The value of every key (also in nested mappings) whose name contains ``token``,
    ``api_key``, ``password``, ``authorization``, ``secret``… becomes ``***``; in every string
    (the event, a formatted traceback) ``Bearer <token>`` and ``://user:password@`` lose
    the secret part.
    """
    for key in list(event_dict):
        if key.startswith("_"):  # structlog's own metadata (the stdlib record)
            continue
        event_dict[key] = _redact(key, event_dict[key])
    return event_dict


def _level_number(level: str) -> int:
    if level.lower() not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    return logging.getLevelNamesMapping()[level.upper()]


def configure_logging(level: str = "info", *, stream: TextIO | None = None,
                      json: bool | None = None) -> None:
    """Configure structlog and the standard library's logging for this process.

    Call once, at the entry point, before anything logs; calling again replaces the setup.

    Args:
        level: ``debug``, ``info``, ``warning`` or ``error``.
        stream: where log lines go (default: standard error).
        json: JSON lines (True) or the console renderer (False); default: JSON unless
            ``stream`` is a terminal.

    Raises:
        ValueError: an unknown level.
    """
    numeric = _level_number(level)
    out = stream if stream is not None else sys.stderr
    as_json = json if json is not None else not out.isatty()
    stamped: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Tracebacks are formatted into a string first in JSON mode, so they are redacted too.
    rendered: list[Processor] = (
        [structlog.processors.format_exc_info, redact_secrets,
         structlog.processors.JSONRenderer()] if as_json
        else [redact_secrets, structlog.dev.ConsoleRenderer()]
    )
    structlog.configure(
        processors=[*stamped, *rendered],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*stamped, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendered],
    ))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    for name in ROUTED_LIBRARIES:  # a library that set up its own output goes through ours
        library = logging.getLogger(name)
        for old in list(library.handlers):
            library.removeHandler(old)
        library.propagate = True

