"""``v6flow node new``: ask for (or take as options) a node's settings and write its node.yaml.

The answers are validated by the node's own model (:class:`v6flow_node.settings.NodeSettings`), on
exactly the values the file will hold (the environment plays no part), so a setting added to
the model is checked here without touching this module. Interactive answers that fail are
asked again; in a script (every option given, or ``--yes``) a failure names each wrong
setting and the option it came from, and exits 2.

The file is written with mode 0600 (it holds the API key), never over an existing one
unless ``--force``.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from v6flow._config import Problem, SettingsError, validation_problems

if TYPE_CHECKING:
    from v6flow_node.settings import NodeSettings

#: The option each top-level setting comes from (for error messages).
OPTION_OF = {"name": "--name", "server_url": "--server-url", "api_key": "--api-key",
             "task_dir": "--task-dir", "databases": "--database",
             "policies": "--allowed-algorithm / --require-algorithm-pull"}
DEFAULT_SERVER_URL = "http://127.0.0.1:7601/api"
#: A unix socket path has at most 107 bytes; the node's is ``<task_dir>/<name>/proxy/proxy.sock``.
MAX_SOCKET_PATH = 107
SOCKET_TAIL = "/proxy/proxy.sock"


class NoAnswer(Exception):
    """Standard input ended while a question was open (a script without the option)."""

    def __init__(self, question: str, option: str) -> None:
        super().__init__(f"no answer to {question!r} on standard input: pass {option} "
                         "(or --yes to accept the defaults)")


def database_keys() -> list[str]:
    """The keys of one ``databases[]`` entry, from the node's model."""
    from v6flow_node.settings import Database

    return list(Database.model_fields)


def parse_database(text: str) -> dict[str, str]:
    """``label=default,uri=/data/a.csv,type=csv`` as a mapping.

    A part without ``=`` continues the previous value (a path with a comma in it).

    Raises:
        ValueError: an unknown key (with the closest known one), or no ``key=`` at the start.
    """
    known = database_keys()
    entry: dict[str, str] = {}
    last: str | None = None
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if sep and key in known:
            entry[key] = value.strip()
            last = key
        elif sep and key.isidentifier():
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown key {key!r}{hint}; known: {', '.join(known)}")
        elif last is not None:
            entry[last] += f",{part}"
        else:
            raise ValueError(f"expected key=value pairs ({', '.join(known)}), got {text!r}")
    return entry


@dataclass
class NodeAnswers:
    """The values of a new node.yaml, as given (options or answers)."""

    name: str | None = None
    server_url: str | None = None
    api_key: str | None = None
    task_dir: str | None = None
    databases: list[dict[str, str]] = field(default_factory=list)
    allowed_algorithms: list[str] | None = None
    require_algorithm_pull: bool = True
    sources: dict[str, str] = field(default_factory=dict)

    def values(self) -> dict[str, Any]:
        """The mapping validated and written (unset values left out)."""
        out: dict[str, Any] = {"name": self.name, "server_url": self.server_url,
                               "api_key": self.api_key, "task_dir": self.task_dir}
        out = {key: value for key, value in out.items() if value is not None}
        out["databases"] = [dict(db) for db in self.databases]
        out["policies"] = {"allowed_algorithms": list(self.allowed_algorithms or []),
                           "require_algorithm_pull": self.require_algorithm_pull}
        return out


def validate(answers: NodeAnswers) -> NodeSettings:
    """Validate the answers with the node's model, on the values alone (no environment).

    Raises:
        SettingsError: every wrong setting, each with the option or answer it came from.
    """
    from pydantic import ValidationError
    from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

    from v6flow_node.settings import NodeSettings

    class _ValuesOnly(NodeSettings):
        @classmethod
        def settings_customise_sources(
                cls, settings_cls: type[BaseSettings],
                init_settings: PydanticBaseSettingsSource,
                env_settings: PydanticBaseSettingsSource,
                dotenv_settings: PydanticBaseSettingsSource,
                file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings,)

    problems: list[Problem] = []
    if not answers.name:
        problems.append(Problem("name", "is required (the node's name and its file's name)",
                                answers.sources.get("name", OPTION_OF["name"])))
    try:
        built = _ValuesOnly(**answers.values())
    except ValidationError as exc:
        problems += validation_problems(
            exc, NodeSettings, lambda key: answers.sources.get(key, OPTION_OF.get(key)))
        raise SettingsError(None, problems, what="node configuration") from None
    if problems:
        raise SettingsError(None, problems, what="node configuration")
    values = {name: getattr(built, name) for name in NodeSettings.model_fields}
    return NodeSettings.model_construct(_fields_set=built.model_fields_set, **values)


def render(settings: NodeSettings) -> str:
    """The node.yaml text: a header and the settings that were given (defaults left out)."""
    import yaml

    body: dict[str, Any] = {
        "name": settings.name, "server_url": settings.server_url,
        "api_key": settings.api_key.get_secret_value(), "task_dir": str(settings.task_dir),
        "databases": [db.model_dump(mode="json", include={"label", "type", "uri"})
                      for db in settings.databases],  # what the questions ask
        "policies": settings.policies.model_dump(mode="json"),
    }
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    header = (f"# node.yaml of node {settings.name!r}, written by `v6flow node new` at {stamp}.\n"
              "# Start it with: v6flow node start --config <this file>\n"
              "# It holds the node's API key: keep it private (mode 0600).\n"
              "# Every other setting and its default: v6flow node start --help\n")
    text: str = yaml.safe_dump(body, sort_keys=False, default_flow_style=False)
    return header + text


def write_private(path: Path, text: str, *, force: bool) -> None:
    """Write ``text`` to ``path`` with mode 0600 (a new parent folder gets 0700).

    Raises:
        FileExistsError: the file exists and ``force`` is False.
        OSError: the folder or file cannot be written.
    """
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    if path.exists() and not force:
        raise FileExistsError(str(path))
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        temp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def warnings_for(settings: NodeSettings) -> list[str]:
    """What works but is probably not meant: no databases, no allowed images, long socket."""
    out = []
    if not settings.databases:
        out.append("no databases: algorithms that read data will fail at this node "
                   "(add --database label=default,uri=/path/data.csv,type=csv)")
    if not settings.policies.allowed_algorithms:
        out.append("policies.allowed_algorithms is empty: every run will be 'not allowed' "
                   "(add --allowed-algorithm IMAGE-OR-REGEX)")
    socket = len(os.fsencode(f"{settings.task_dir}/{settings.name}{SOCKET_TAIL}"))
    if socket > MAX_SOCKET_PATH:
        out.append(f"task_dir and the node name make the proxy socket path {socket} bytes "
                   f"long (at most {MAX_SOCKET_PATH}): choose a shorter task_dir")
    return out


# --- interactive questions ------------------------------------------------------------------

Ask = Callable[..., str]
Confirm = Callable[..., bool]


@dataclass
class Questions:
    """Asks for the values not given as options; ``ask``/``confirm`` are rich's prompts."""

    ask: Ask
    confirm: Confirm
    say: Callable[[str], None]

    def _ask(self, question: str, option: str, **kwargs: Any) -> str:
        try:
            return self.ask(question, **kwargs).strip()
        except EOFError:
            raise NoAnswer(question, option) from None

    def _confirm(self, question: str, option: str, default: bool) -> bool:
        try:
            return self.confirm(question, default=default)
        except EOFError:
            raise NoAnswer(question, option) from None

    def fill(self, answers: NodeAnswers, missing: Sequence[str]) -> None:
        """Ask for each top-level setting in ``missing`` (in the file's order)."""
        from v6flow.cli.node_files import default_task_dir

        for key in ("name", "server_url", "api_key", "task_dir", "databases", "policies"):
            if key not in missing:
                continue
            answers.sources[key] = "your answer"
            if key == "name":
                answers.name = self._ask("Node name", "--name") or None
            elif key == "server_url":
                answers.server_url = self._ask("Server URL (the API root)", "--server-url",
                                               default=answers.server_url or DEFAULT_SERVER_URL)
            elif key == "api_key":
                answers.api_key = self._ask(
                    "API key (printed when the node was registered; input is hidden)",
                    "--api-key", password=True) or None
            elif key == "task_dir":
                answers.task_dir = self._ask(
                    "Folder for run files and the proxy socket (task_dir)", "--task-dir",
                    default=answers.task_dir or str(default_task_dir()))
            elif key == "databases":
                answers.databases = self.databases()
            else:
                self.policies(answers)

    def databases(self) -> list[dict[str, str]]:
        """Ask for databases until the user says no more; each one is checked at once."""
        from pydantic import ValidationError

        from v6flow.databases import DatabaseType
        from v6flow_node.settings import Database

        chosen: list[dict[str, str]] = []
        more = self._confirm("Add a database (a data file algorithms may read)?",
                             "--database", default=True)
        while more:
            label = self._ask("  Label", "--database", default="default" if not chosen else None)
            uri = self._ask("  File path", "--database")
            kind = self._ask("  Type", "--database", default=DatabaseType.CSV.value,
                             choices=[t.value for t in DatabaseType])
            entry = {"label": label, "uri": uri, "type": kind}
            try:
                Database.model_validate(entry)
            except ValidationError as exc:
                for problem in validation_problems(exc, Database):
                    self.say(f"  [red]{problem}[/red] (asked again)")
                continue
            chosen.append(entry)
            more = self._confirm("Add another database?", "--database", default=False)
        return chosen

    def policies(self, answers: NodeAnswers) -> None:
        """Ask which images may run and whether they must be pulled."""
        text = self._ask("Algorithm images this node may run (comma-separated: exact images, "
                         "images without tag, or regexes; empty: none)",
                         "--allowed-algorithm", default="")
        answers.allowed_algorithms = [p.strip() for p in text.split(",") if p.strip()]
        answers.require_algorithm_pull = self._confirm(
            "Must every algorithm image be pulled from its registry (no for images built "
            "on this host)?", "--require-algorithm-pull", default=answers.require_algorithm_pull)


def wrong_settings(error: SettingsError) -> list[str]:
    """The top-level settings a :class:`SettingsError` names (to ask them again)."""
    keys = []
    for problem in error.problems:
        top = problem.field.split(".")[0].split("[")[0]
        keys.append(top or "name")
    return list(dict.fromkeys(keys))


def collect(answers: NodeAnswers, questions: Questions | None,
            given: Mapping[str, bool]) -> NodeSettings:
    """Ask what was not given (unless ``questions`` is None), validate, ask wrong ones again.

    Args:
        answers: the values given as options.
        questions: the prompts, or None for no questions at all (``--yes``).
        given: which top-level settings came as options (never asked).

    Raises:
        SettingsError: (without questions) the values are wrong.
        NoAnswer: standard input ended while a question was open.
    """
    if questions is not None:
        questions.fill(answers, [key for key, was_given in given.items() if not was_given])
    while True:
        try:
            return validate(answers)
        except SettingsError as exc:
            if questions is None:
                raise
            wrong = [key for key in wrong_settings(exc) if key in OPTION_OF]
            if len(wrong) < len(wrong_settings(exc)):
                raise  # a setting no question asks for: asking again would not help
            for problem in exc.problems:
                questions.say(f"[red]{problem}[/red]")
            questions.fill(answers, wrong)
