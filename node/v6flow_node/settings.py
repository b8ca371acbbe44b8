"""The node.yaml model: what a node needs to know, validated once at start.

Example::

    server_url: http://127.0.0.1:7601/api
    api_key: 9f1c...                       # the node's API key (a UUID)
    name: hospital-a                       # optional; defaults to the server's node name
    task_dir: /var/lib/v6flow/tasks
    databases:
      - {label: default, uri: /data/patients.csv, type: csv}
      - {label: cohort, type: sql, uri: "postgresql://reader@db.example:5432/cohort",
         password: s3cret}                 # see docs/databases.md for every type
    policies:
      allowed_algorithms: ["^v6flow/.*"]    # exact image, image without tag, or regex
      require_algorithm_pull: true
    algorithm_env: {}                      # extra env for every algorithm (merged last)
    share_algorithm_logs: true
    pull_timeout: 20                       # seconds an image pull may take
    sidecar_image: v6flow/base:0.1.0       # network sidecar (python3 + v6flow)
    limits:                                # per algorithm container (see docs/node-security.md)
      memory: 2g                           # RAM (+ its /tmp tmpfs), no swap; k/m/g or bytes
      pids: 256                            # processes + threads at once
      cpus: 1.0                            # CPU cores (fractions allowed)
    whitelist:                             # what algorithms may reach through the node
      domains: [fhir.hospital.local, .trusted.org]   # exact names, or a suffix after a dot
      ips: [10.1.2.3, 192.168.10.0/24]     # addresses or networks
      ports: [443]                         # always needed: no listed port, nothing reachable
    peer_to_peer: true                     # runs of one job may connect (docs/p2p.md)
    encryption:                            # for encrypted collaborations (docs/security.md)
      enabled: true
      private_key: /etc/v6flow/org.pem     # the organization's RSA key (`v6flow key generate`)

Values may also come from ``V6FLOW_NODE_<FIELD>`` environment variables (file wins).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from v6flow import __version__
from v6flow.crypto import RSAPrivateKey, private_key_from_pem
from v6flow.databases import (
    DEFAULT_PORTS,
    FILE_TYPES,
    QUERY_TYPES,
    DatabaseType,
    dialect,
    host_and_port,
    is_sqlite_url,
    redact,
    split_password,
    sqlite_path,
)
from v6flow.errors import ConfigurationError, InvalidKey
from v6flow.schemas import is_database_label
from v6flow_node.runtime.identity import unreadable_reason

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: Keys the node never lets ``algorithm_env`` set (they come from the image).
ENV_NOT_SETTABLE = frozenset({"PKG_NAME"})


class Database(BaseModel):
    """One database of the node (docs/databases.md).

    Files (``csv``, ``parquet``, ``excel``, an SQLite ``sql``) are bind-mounted read-only into
    algorithm containers; servers (``sql`` URLs, ``sparql`` endpoints) are reached through a
    forward the node opens (:mod:`v6flow_node.runtime.dbforward`); ``other`` is passed through. A
    password written into a server ``uri`` is moved into ``password`` here, so ``uri`` never
    holds a secret after validation.
    """

    model_config = ConfigDict(extra="forbid")

    label: str = Field(description="Python identifier the task uses to request this database")
    type: DatabaseType = Field(DatabaseType.CSV, description="How @data loads it: "
                               + ", ".join(t.value for t in DatabaseType))
    uri: str = Field(description="File path (csv, parquet, excel, SQLite), SQLAlchemy URL (sql), "
                                 "http(s) endpoint (sparql), or anything (other)")
    password: SecretStr | None = Field(
        None, description="Password of a sql/sparql server (or write it into the uri); "
                          "handed to containers, never logged")
    env: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Extra values for algorithms as <LABEL>_DB_PARAM_<KEY> (v4 'env')")
    mount_mode: Literal["ro", "copy"] = Field(
        "ro", description="Accepted for v4 configs; files are always mounted read-only")

    @field_validator("label")
    @classmethod
    def _label_is_identifier(cls, value: str) -> str:
        if not is_database_label(value):
            raise ValueError(f"{value!r} is not a database label (a letter or underscore, then "
                             "letters, digits or underscores, at most 64 in all)")
        return value

    @field_validator("env", mode="before")
    @classmethod
    def _env_values_as_text(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        for key in value:
            if not isinstance(key, str) or not _IDENTIFIER.match(key):
                raise ValueError(f"{key!r} is not an identifier (it becomes an env name)")
        return {k: v if isinstance(v, str | SecretStr) or v is None else str(v)
                for k, v in value.items()}

    @field_validator("uri", mode="before")
    @classmethod
    def _path_as_text(cls, value: Any) -> Any:
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @field_validator("uri")
    @classmethod
    def _uri_fits_type(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("type")
        if kind is None:  # the type itself is wrong; that error is reported
            return value
        if not value.strip():
            raise ValueError("must not be empty")
        if kind is DatabaseType.OTHER:
            return value
        if kind in FILE_TYPES:
            return str(_readable_file(value))
        if kind is DatabaseType.SQL and "://" not in value:
            return str(_readable_file(value))  # an SQLite file, as v4
        if kind is DatabaseType.SQL and is_sqlite_url(value):
            path = sqlite_path(value)
            if not path or path.startswith(":memory:"):
                raise ValueError("an SQLite URL must name a file: sqlite:////path/to/file.db")
            return f"sqlite:///{_readable_file(path)}"
        return _server_url(value, kind)

    @field_validator("password")
    @classmethod
    def _password_for_servers(cls, value: SecretStr | None,
                              info: ValidationInfo) -> SecretStr | None:
        kind, uri = info.data.get("type"), info.data.get("uri")
        if value is None or kind is None or uri is None:
            return value
        if kind not in QUERY_TYPES or "://" not in uri or is_sqlite_url(uri):
            raise ValueError(f"only sql and sparql servers take a password, not this "
                             f"{kind.value} database")
        if split_password(uri)[1] is not None:
            raise ValueError("the uri holds a password too; keep one of them")
        return value

    @model_validator(mode="after")
    def _password_out_of_uri(self) -> Database:
        if self.server is not None:
            bare, password = split_password(self.uri)
            if password is not None:
                self.uri, self.password = bare, SecretStr(password)
        return self

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, (redact(value) if name == "uri" else value)

    @property
    def file(self) -> Path | None:
        """The file on the node's host that containers get read-only (None for servers)."""
        if self.type in FILE_TYPES or (self.type is DatabaseType.SQL and "://" not in self.uri):
            return Path(self.uri)
        if self.type is DatabaseType.SQL and is_sqlite_url(self.uri):
            return Path(sqlite_path(self.uri))
        return None

    @property
    def server(self) -> tuple[str, int] | None:
        """``(host, port)`` of a sql/sparql server the node forwards to (None otherwise)."""
        if self.type not in QUERY_TYPES or self.file is not None:
            return None
        host, port = host_and_port(self.uri)
        return host, port or DEFAULT_PORTS[dialect(self.uri)]


def _readable_file(value: str) -> Path:
    """An existing file the algorithm user can read (resolved), or ValueError."""
    path = Path(value).expanduser().resolve()
    if not path.is_file():
        raise ValueError(f"{path} is not an existing file")
    reason = unreadable_reason(path)
    if reason:
        raise ValueError(f"{path}: {reason}")
    return path


def _server_url(value: str, kind: DatabaseType) -> str:
    """Check a sql/sparql server URL; the messages never repeat it (it may hold a password)."""
    scheme = dialect(value)
    if kind is DatabaseType.SPARQL and scheme not in ("http", "https"):
        raise ValueError("a sparql database is an http:// or https:// endpoint URL")
    try:
        host, port = host_and_port(value)
    except ValueError:
        raise ValueError("the port of the URL is not a number in 1..65535") from None
    if not host or "," in urlsplit(value).netloc:
        raise ValueError(f"the {scheme} URL needs exactly one host (host:port); unix sockets "
                         "and host lists are not supported")
    if port is None and scheme not in DEFAULT_PORTS:
        raise ValueError(f"the {scheme} URL has no port and {scheme} has no default port "
                         "known to v6flow; write host:port")
    return value


class Policies(BaseModel):
    """Which algorithm images may run, and where they must come from."""

    allowed_algorithms: list[str] = Field(
        default_factory=list,
        description="Exact images, images without tag, or regexes. Secure by default: an "
                    "empty or missing list allows no image (write ['.*'] to allow all)",
    )
    require_algorithm_pull: bool = Field(
        True, description="The image must be pulled successfully (v4 default: true)"
    )

    @field_validator("allowed_algorithms")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from exc
        return value


MiB = 1024**2
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": MiB, "g": 1024**3, "t": 1024**4}
#: The smallest memory limit a Python algorithm can start in.
MIN_MEMORY = 32 * MiB
MIN_PIDS = 16
MAX_PIDS = 1 << 22  # the kernel's highest pid_max


def parse_size(value: Any) -> int:
    """Bytes from ``2g``, ``512m``, ``512MiB``, ``1.5G`` or a plain byte count (1024-based).

    Raises:
        ValueError: not a size.
    """
    if isinstance(value, bool):
        raise ValueError("must be a size such as 512m or 2g")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a size such as 512m or 2g")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def size_text(size: int) -> str:
    """``256 MiB``, ``2 GiB``, ``1.5 GiB`` (for messages)."""
    for unit, factor in (("GiB", 1024**3), ("MiB", MiB), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} bytes"


class Limits(BaseModel):
    """Resources of one algorithm container; a run that exceeds them ends ``crashed``."""

    model_config = ConfigDict(extra="forbid")

    memory: int = Field(
        2 * 1024**3,
        description="Memory in bytes, or a size such as 512m or 2g (1024-based). Swap is not "
                    "used, and what the algorithm writes to its /tmp counts too",
    )
    pids: int = Field(256, ge=MIN_PIDS, le=MAX_PIDS,
                      description="Processes and threads the container may run at once")
    cpus: float = Field(1.0, description="CPU cores the container may use (e.g. 0.5)")

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> int:
        size = parse_size(value)
        if size < MIN_MEMORY:
            raise ValueError(f"must be at least {size_text(MIN_MEMORY)}")
        return size

    @field_validator("cpus")
    @classmethod
    def _cpus(cls, value: float) -> float:
        available = os.cpu_count() or 1
        if not 0.01 <= value <= available:
            raise ValueError(f"must be between 0.01 and {available} (the CPUs of this host)")
        return value


_DOMAIN = re.compile(r"^(\*?\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*"
                     r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def _domain(value: str) -> str:
    name = value.strip().lower().rstrip(".")
    if name.startswith("*."):
        name = name[1:]
    if len(name) > 253 or not _DOMAIN.match(name) or name == ".":
        raise ValueError(f"{value!r} is not a domain name (write example.org, or .example.org "
                         "for it and every name under it)")
    return name


def _network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IP address or network (such as 10.0.0.5 or "
                         "10.0.0.0/24)") from exc


WhitelistDomain = Annotated[str, AfterValidator(_domain)]
WhitelistNetwork = Annotated[str, AfterValidator(_network)]
WhitelistPort = Annotated[int, Field(ge=1, le=65535)]


class Whitelist(BaseModel):
    """What algorithm containers may reach through the node's forward proxy (v4's keys).

    A request is let through when its port is listed and its host is a listed domain (or a
    name under a ``.domain``), a listed address, or a name whose addresses all are listed.
    Names are resolved by the node; containers have no DNS of their own.
    """

    model_config = ConfigDict(extra="forbid")

    domains: list[WhitelistDomain] = Field(
        default_factory=list,
        description="Host names; a leading dot (or *.) also allows every name under it")
    ips: list[WhitelistNetwork] = Field(
        default_factory=list, description="IP addresses or networks (CIDR)")
    ports: list[WhitelistPort] = Field(
        default_factory=list, description="TCP ports; a request to any other port is refused")


class SubtaskScheme(StrEnum):
    """How the node proxy encrypts the inputs of subtasks its algorithms create."""

    AUTHENTICATED = "v6flow-aead-1"
    V4 = "v4"


class Encryption(BaseModel):
    """End-to-end encryption (v4's ``encryption`` section; docs/security.md).

    With ``enabled`` the node decrypts every run's input with ``private_key`` (its
    organization's key; the node uploads the public half when the server's differs), refuses
    unencrypted input, and encrypts each result for the task's initiating organization.
    Without it, an encrypted run fails with a reason that says the node has no private key.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="Decrypt inputs and encrypt results (needed in "
                                             "encrypted collaborations)")
    private_key: Path | None = Field(
        None, description="PEM file of the organization's RSA private key (no passphrase), "
                          "e.g. from `v6flow key generate`")
    subtask_scheme: SubtaskScheme = Field(
        SubtaskScheme.AUTHENTICATED,
        description="How the proxy encrypts subtask inputs of algorithms: v6flow-aead-1 "
                    "(authenticated) or v4 (when v4 nodes take part)")

    @field_validator("private_key", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value  # v4 writes private_key: "" when disabled

    @model_validator(mode="after")
    def _key_when_enabled(self) -> Encryption:
        if not self.enabled:
            return self
        if self.private_key is None:
            raise ValueError("encryption is enabled, so private_key must name the "
                             "organization's private key file")
        self.private_key = self.private_key.expanduser().resolve()
        load_private_key(self.private_key)
        return self


def load_private_key(path: Path) -> RSAPrivateKey:
    """The RSA private key in ``path``.

    Raises:
        ValueError: unreadable, or not a usable key (the message says why, never the key).
    """
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"private_key {path}: cannot read it ({exc.strerror})") from None
    try:
        return private_key_from_pem(pem)
    except InvalidKey as exc:
        raise ValueError(f"private_key {path}: {exc}") from None


class NodeSettings(BaseSettings):
    """Settings of one node process."""

    model_config = SettingsConfigDict(env_prefix="V6FLOW_NODE_", extra="forbid")

    server_url: str = Field(description="Server API base, e.g. http://127.0.0.1:7601/api")
    api_key: SecretStr = Field(description="The node's API key")
    name: str | None = Field(None, description="Node name; defaults to the server's")
    task_dir: Path = Field(description="Folder for per-run files and the proxy socket")
    databases: list[Database] = Field(default_factory=list)
    policies: Policies = Field(default_factory=lambda: Policies.model_validate({}))
    algorithm_env: dict[str, str] = Field(default_factory=dict)
    share_algorithm_logs: bool = Field(True, description="Stream container logs to the server")
    pull_timeout: float = Field(20.0, gt=0, description="Seconds an image pull may take")
    sidecar_image: str = Field(
        f"v6flow/base:{__version__}",
        description="Image of the network sidecar (python3 with v6flow installed)",
    )
    limits: Limits = Field(default_factory=lambda: Limits.model_validate({}),
                           description="Memory, PID and CPU limits of algorithm containers")
    whitelist: Whitelist | None = Field(
        None, description="Hosts and ports algorithm containers may reach through the node's "
                          "forward proxy (HTTP_PROXY); none when unset")
    peer_to_peer: bool = Field(
        True, description="Runs of one job may connect to the ports their image EXPOSEs, "
                          "relayed by the server (docs/p2p.md)")
    encryption: Encryption = Field(default_factory=lambda: Encryption.model_validate({}),
                                   description="End-to-end encryption of inputs and results")
    spare_sidecars: int = Field(
        1, ge=0, le=16,
        description="Network sidecars kept started ahead, so a new job's algorithm does not "
                    "wait for its sidecar to start (each serves one job; 0: start per job)")

    @field_validator("server_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("databases")
    @classmethod
    def _unique_labels(cls, value: list[Database]) -> list[Database]:
        labels = [db.label for db in value]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ValueError(f"duplicate labels {duplicates}")
        return value

    @field_validator("algorithm_env")
    @classmethod
    def _env_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _IDENTIFIER.match(key) or key in ENV_NOT_SETTABLE:
                raise ValueError(f"{key!r} may not be set by the node")
        return value

    @field_validator("task_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()


def _field_name(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as ``databases[0].label``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "node.yaml"


def load_settings(path: Path) -> NodeSettings:
    """Read and validate a node.yaml file.

    Args:
        path: the YAML file.

    Returns:
        The validated settings.

    Raises:
        ConfigurationError: the file is missing or unreadable, is not YAML, is not a mapping,
            or a field is wrong (the error names the field).
    """
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(str(path),
                                 f"cannot read the config file ({exc.strerror})") from exc
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(str(path), f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigurationError(str(path), "must be a YAML mapping of settings")
    try:
        return NodeSettings(**raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _field_name(tuple(first["loc"]))
        reason = str(first["msg"]).removeprefix("Value error, ")
        extra = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigurationError(field, f"{reason}{extra}") from exc
