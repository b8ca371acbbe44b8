"""Load a YAML file into pydantic settings, and explain every wrong field in one message.

Shared by ``v6flow server start`` / ``server import`` (``ServerSettings``) and ``v6flow node
start`` (``NodeSettings``). The file is read by pydantic-settings' own
``YamlConfigSettingsSource``; this module only orders the sources and turns the errors into
:class:`SettingsError`, which names the file and *all* wrong fields, each with where its value
came from.

Precedence, highest first (``file_over_env=False``, the server's order)::

    command-line options  >  environment (V6FLOW_SERVER_<FIELD>)  >  YAML file  >  defaults

With ``file_over_env=True`` (the node's documented order) the file comes before the
environment. :func:`describe_settings` lists every field (key, environment variable, default,
description) for ``--help`` and :func:`settings_template` writes a commented YAML file of them.
"""

from __future__ import annotations

import difflib
import os
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast, get_args

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import PydanticUndefined, to_jsonable_python
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    YamlConfigSettingsSource,
)
from pydantic_settings import SettingsError as PydanticSettingsError
from pydantic_settings.sources.types import Traversable

from v6flow.errors import ConfigurationError

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

#: ``Problem.source`` of a value given as a keyword (a command-line option).
COMMAND_LINE = "command line"


@dataclass(frozen=True)
class Problem:
    """One wrong value: ``field`` (``databases[0].label``; empty: the whole file) and why."""

    field: str
    reason: str
    source: str | None = None

    def __str__(self) -> str:
        """``field: reason (from source)``."""
        where = f" (from {self.source})" if self.source else ""
        return f"{self.field}: {self.reason}{where}" if self.field else self.reason


class SettingsError(ConfigurationError):
    """Settings (a file, the environment, options) are wrong; ``problems`` lists all of them.

    ``field`` (of :class:`ConfigurationError`) is the first wrong field, ``path`` the file.
    """

    def __init__(self, path: Path | None, problems: Sequence[Problem], *,
                 what: str = "settings") -> None:
        """Keep the file and every problem; ``what`` names the thing ("node configuration")."""
        first = problems[0] if problems else Problem("", "invalid")
        super().__init__(first.field or str(path or what), first.reason)
        self.path = path
        self.problems = tuple(problems)
        self.what = what

    def __str__(self) -> str:
        """One line for one problem, else a heading and one indented line per problem."""
        where = f" in {self.path}" if self.path else ""
        if len(self.problems) == 1:
            return f"invalid {self.what}{where}: {self.problems[0]}"
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        return f"invalid {self.what}{where} ({len(self.problems)} problems):\n{lines}"


class _NotAMapping(Exception):
    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class _MappingYamlSource(YamlConfigSettingsSource):
    """pydantic-settings' YAML source that refuses a file whose top level is not a mapping."""

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        data: Any = super()._read_file(file_path)
        if not isinstance(data, dict):
            raise _NotAMapping(type(data).__name__)
        return cast(dict[str, Any], data)


def yaml_error_text(exc: Exception) -> str:
    """A YAML error as ``problem at line L, column C``, without quoting the file's text.

    PyYAML's own message repeats the offending line, which may hold a password.
    """
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem is None:
        return type(exc).__name__
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def field_path(loc: Iterable[int | str]) -> str:
    """Render a pydantic error location as ``databases[0].label``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model_at(model: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model class that holds the last element of ``loc`` (for "did you mean")."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        info = current.model_fields.get(part)
        current = _nested_model(info.annotation) if info is not None else None
        if current is None and info is not None:  # list[Model] / dict[str, Model]
            current = next((arg for arg in get_args(info.annotation)
                            if isinstance(arg, type) and issubclass(arg, BaseModel)), None)
    return current


def validation_problems(exc: ValidationError, model: type[BaseModel],
                        source_of: Any = None) -> list[Problem]:
    """Every error of ``exc`` as a :class:`Problem` (never the input value: it may be secret).

    Args:
        exc: the validation error.
        model: the model that was validated (for "did you mean" on unknown keys).
        source_of: optional callable ``top-level field name -> source or None``.
    """
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = tuple(error["loc"])
        reason = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            holder = _model_at(model, loc)
            known = list(holder.model_fields) if holder else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            reason = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
        source = source_of(str(loc[0])) if source_of and loc else None
        problems.append(Problem(field_path(loc), reason, source))
    return problems


def _env_names(settings_cls: type[BaseSettings]) -> tuple[str, str | None]:
    config = settings_cls.model_config
    return str(config.get("env_prefix") or ""), config.get("env_nested_delimiter") or None


def _sources(settings_cls: type[SettingsT], path: Path, file_over_env: bool,
             opened: list[_MappingYamlSource]) -> type[SettingsT]:
    """A subclass of ``settings_cls`` whose sources include ``path`` at the chosen rank."""

    def customise(_cls: type[BaseSettings], settings: type[BaseSettings],
                  init_settings: PydanticBaseSettingsSource,
                  env_settings: PydanticBaseSettingsSource,
                  dotenv_settings: PydanticBaseSettingsSource,
                  file_secret_settings: PydanticBaseSettingsSource,
                  ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_source = _MappingYamlSource(settings, yaml_file=path)
        opened.append(yaml_source)
        if file_over_env:
            return init_settings, yaml_source, env_settings, dotenv_settings, file_secret_settings
        return init_settings, env_settings, dotenv_settings, yaml_source, file_secret_settings

    namespace = {"settings_customise_sources": classmethod(customise),
                 "__module__": settings_cls.__module__, "__doc__": settings_cls.__doc__}
    return cast(type[SettingsT], type(settings_cls.__name__, (settings_cls,), namespace))


def load_settings(settings_cls: type[SettingsT], path: Path | None = None, *,
                  overrides: Mapping[str, Any] | None = None, file_over_env: bool = False,
                  what: str = "settings") -> SettingsT:
    """Build ``settings_cls`` from options, the environment, a YAML file and the defaults.

    Args:
        settings_cls: a pydantic-settings class (its ``env_prefix`` names the variables).
        path: the YAML file (its keys are the field names), or None for no file.
        overrides: values given on the command line; they win over everything.
        file_over_env: rank the file above the environment (the node's order).
        what: how messages call these settings ("server configuration").

    Returns:
        Validated settings, an instance of exactly ``settings_cls``.

    Raises:
        SettingsError: the file is missing, unreadable, not YAML or not a mapping, or values
            are wrong; it names the file and every wrong field with its source.
    """
    import yaml

    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    opened: list[_MappingYamlSource] = []

    def fail(reason: str) -> SettingsError:
        return SettingsError(path, [Problem("", reason)], what=what)

    if path is not None:
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise fail(f"cannot read the file ({exc.strerror})") from None
    cls = settings_cls if path is None else _sources(settings_cls, path, file_over_env, opened)
    try:
        built = cls(**given)
    except ValidationError as exc:
        file_keys = {k.lower() for k in (opened[0].yaml_data if opened else {})}
        raise SettingsError(path, validation_problems(
            exc, settings_cls, _source_finder(settings_cls, path, given, file_keys,
                                              file_over_env)), what=what) from None
    except yaml.YAMLError as exc:
        raise fail(f"not valid YAML: {yaml_error_text(exc)}") from None
    except UnicodeDecodeError:
        raise fail("not UTF-8 text") from None
    except PydanticSettingsError as exc:  # a variable holding malformed JSON for a list/dict
        raise SettingsError(path, [_source_problem(settings_cls, str(exc))], what=what) from None
    except _NotAMapping as exc:
        raise fail(f"must be a YAML mapping of settings, not a {exc.kind}") from None
    if cls is settings_cls:
        return built
    values = {name: getattr(built, name) for name in settings_cls.model_fields}
    return settings_cls.model_construct(_fields_set=built.model_fields_set, **values)


def _source_problem(settings_cls: type[BaseSettings], message: str) -> Problem:
    """pydantic-settings' 'error parsing value for field "x" from source "EnvSettingsSource"'."""
    match = re.search(r'field "([^"]+)"', message)
    name = match.group(1) if match else ""
    prefix, _ = _env_names(settings_cls)
    source = f"{prefix}{name}".upper() if "Env" in message and name else None
    return Problem(name, "cannot be parsed (lists and mappings are JSON in a variable)", source)


def _source_finder(settings_cls: type[BaseSettings], path: Path | None,
                   given: Mapping[str, Any], file_keys: set[str], file_over_env: bool) -> Any:
    prefix, delimiter = _env_names(settings_cls)
    environment = {key.upper() for key in os.environ}

    def source_of(name: str) -> str | None:
        if name in given:
            return COMMAND_LINE
        variable = f"{prefix}{name}".upper()
        in_env = variable in environment or (bool(delimiter) and any(
            key.startswith(f"{variable}{delimiter}".upper()) for key in environment))
        in_file = name.lower() in file_keys
        if in_file and (file_over_env or not in_env):
            return str(path)
        return variable if in_env else None

    return source_of


# --- documentation of the settings -------------------------------------------------------

@dataclass(frozen=True)
class SettingDoc:
    """One setting as ``--help`` and the template show it."""

    key: str
    env: str
    description: str
    default: Any
    required: bool
    secret: bool


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """``annotation`` itself (or ``X | None``) when it is a pydantic model: a section."""
    candidates = [annotation, *get_args(annotation)]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


def describe_settings(settings_cls: type[BaseSettings]) -> list[SettingDoc]:
    """Every field of ``settings_cls`` (sections flattened to ``section.key``), in order."""
    prefix, delimiter = _env_names(settings_cls)
    docs: list[SettingDoc] = []

    def walk(model: type[BaseModel], keys: tuple[str, ...]) -> None:
        for name, info in model.model_fields.items():
            path = (*keys, name)
            section = _nested_model(info.annotation)
            if section is not None and delimiter and not issubclass(section, BaseSettings):
                walk(section, path)
                continue
            required = info.is_required()
            default = (None if required else info.get_default(call_default_factory=True))
            env = prefix + (delimiter or "__").join(path)
            docs.append(SettingDoc(key=".".join(path), env=env.upper(),
                                   description=info.description or "", default=default,
                                   required=required, secret=_is_secret(info.annotation)))

    walk(settings_cls, ())
    return docs


def render_default(doc: SettingDoc) -> str:
    """How ``--help`` shows a default: ``required``, ``unset`` or the YAML of the value."""
    if doc.required:
        return "required"
    if doc.default is None or doc.default is PydanticUndefined:
        return "unset"
    if isinstance(doc.default, SecretStr):
        return "(secret)"
    return _yaml_scalar(doc.default)


def _yaml_scalar(value: Any) -> str:
    import yaml

    text: str = yaml.safe_dump(to_jsonable_python(value), default_flow_style=True, width=1000)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def settings_help(settings_cls: type[BaseSettings], *, file_over_env: bool = False) -> str:
    """The settings section of ``--help``: each key, its variable, default and description."""
    order = ("options > YAML file > environment > defaults" if file_over_env
             else "options > environment > YAML file > defaults")
    lines = ["Settings: the YAML keys of --config, or environment variables.",
             f"Precedence: {order}.", ""]
    for doc in describe_settings(settings_cls):
        lines.append(f"  {doc.key}  [{doc.env}]  default: {render_default(doc)}")
        if doc.description:
            lines.append(f"      {doc.description}")
    return "\n".join(lines)


def settings_template(settings_cls: type[BaseSettings], *, title: str,
                      file_over_env: bool = False) -> str:
    """A commented YAML file with every setting at its default (secrets commented out).

    Loading the file unchanged gives the defaults; required settings are left commented out
    with a ``<required>`` placeholder.
    """
    rank = "this file wins over it" if file_over_env else "it wins over this file"
    out = [f"# {title}", "#",
           "# Every setting with its default. Each can also be set through the environment",
           f"# variable named in its comment ({rank}).", ""]
    section: tuple[str, ...] = ()
    for doc in describe_settings(settings_cls):
        *parents, key = doc.key.split(".")
        if tuple(parents) != section:
            for depth in range(len(parents)):
                if tuple(parents[: depth + 1]) != section[: depth + 1]:
                    out.append(f"{'  ' * depth}{parents[depth]}:")
            section = tuple(parents)
        indent = "  " * len(parents)
        for line in textwrap.wrap(doc.description, 96 - len(indent)) or [""]:
            out.append(f"{indent}# {line}".rstrip())
        out.append(f"{indent}# env: {doc.env}")
        if doc.required:
            out.append(f"{indent}# {key}: <required>")
        elif doc.secret:
            out.append(f"{indent}# {key}:    (a secret: prefer the variable {doc.env})")
        else:
            out.append(f"{indent}{key}: {_yaml_scalar(doc.default)}")
        out.append("")
    return "\n".join(out)
