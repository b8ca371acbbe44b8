"""Batch import: organizations, collaborations, users and nodes from one YAML file.

The file format is the pydantic model ``v6flow.schemas.imports.ImportFile`` (documented, with
an example, in docs/import.md). ``v6flow server import`` runs it against the server's database:

1. :func:`load_import_file` validates the file alone (types, unknown keys, password rules);
2. :func:`plan_import` checks it against the database and decides, per entry, *create* or
   *exists*; every problem (unknown role, organization referenced but not defined, duplicate
   names, a contradiction with an existing row) is collected and raised at once;
3. :func:`apply_plan` creates what the plan says through the service layer
   (``create_organization``, ``create_collaboration``, ``create_user``, ``create_node``) with
   an identity that holds every rule, inside the caller's single transaction.

Entities are matched by name (users by username, nodes by organization and collaboration) and
an existing one is never changed: its fields, password and roles stay as they are. Where the
file contradicts an existing row in a way that matters (a user in another organization, a
collaboration's ``encrypted`` flag or members, a node name used by another pair), the import
is refused. An existing node's API key cannot be recovered (only its hash is stored).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from v6flow._config import Problem, SettingsError, validation_problems, yaml_error_text
from v6flow.schemas import CollaborationCreate, NodeCreate, UserCreate
from v6flow.schemas.imports import ImportFile, NodeEntry, UserEntry
from v6flow_server.auth.password_policy import (
    DEFAULT_PASSWORD_POLICY,
    PasswordPolicy,
    PasswordPolicyError,
)
from v6flow_server.auth.permissions import ROOT_RULES
from v6flow_server.auth.principals import ClientType, UserIdentity
from v6flow_server.db.models import Collaboration, Node, Organization, Role, User
from v6flow_server.errors import ServerDomainError
from v6flow_server.services.collaborations import create_collaboration
from v6flow_server.services.nodes import create_node
from v6flow_server.services.organizations import create_organization
from v6flow_server.services.users import create_user


class Action(StrEnum):
    """What the import does with one entry."""

    CREATE = "create"
    EXISTS = "exists"


@dataclass
class Step:
    """One entry of the plan."""

    kind: str
    name: str
    action: Action
    entry: Any = field(repr=False, default=None)
    detail: str = ""
    organization: str = ""
    collaboration: str = ""
    role_ids: list[int] = field(default_factory=list)


@dataclass
class Plan:
    """What an import will create and what exists already, per kind, in file order."""

    steps: list[Step]

    def of(self, kind: str, action: Action | None = None) -> list[Step]:
        """The steps of one kind (and action)."""
        return [s for s in self.steps if s.kind == kind and action in (None, s.action)]


@dataclass(frozen=True)
class CreatedNode:
    """A node created now, with its API key (shown once) and where it belongs."""

    node_id: int
    name: str
    api_key: str
    organization: str
    collaboration: str
    encrypted: bool


KINDS = ("organizations", "collaborations", "users", "nodes")


def load_import_file(path: Path) -> ImportFile:
    """Read and validate an import file on its own (no database).

    Raises:
        SettingsError: unreadable, not YAML, not a mapping, or entries with wrong fields
            (every one named, e.g. ``users[3].password``; values are never shown).
    """
    import yaml

    def fail(reason: str) -> SettingsError:
        return SettingsError(path, [Problem("", reason)], what="import file")

    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise fail(f"cannot read the file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise fail(f"not valid YAML: {yaml_error_text(exc)}") from None
    except UnicodeDecodeError:
        raise fail("not UTF-8 text") from None
    if not isinstance(raw, dict):
        raise fail("must be a YAML mapping with organizations, collaborations, users, nodes")
    try:
        return ImportFile.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(path, validation_problems(exc, ImportFile),
                            what="import file") from None


def importer_identity() -> UserIdentity:
    """Who the import acts as: every rule (whoever has the database URL has full control)."""
    return UserIdentity(client_type=ClientType.USER, organization_id=0,
                        collaboration_ids=frozenset(), rules=ROOT_RULES, user_id=0,
                        username="v6flow server import")


def _by_name(session: Session, model: Any, column: Any, names: Iterable[str],
             *options: Any) -> dict[str, Any]:
    wanted = sorted(set(names))
    if not wanted:
        return {}
    rows = session.scalars(select(model).where(column.in_(wanted)).options(*options))
    return {getattr(row, column.key): row for row in rows}


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _first_seen(problems: list[Problem], seen: dict[str, int], value: str, where: str,
                index: int, kind: str) -> bool:
    """Record ``value``; on a repeat add a problem naming the first entry and return False."""
    if value in seen:
        problems.append(Problem(where, f"{value!r} is listed twice (first in "
                                       f"{kind}[{seen[value]}])"))
        return False
    seen[value] = index
    return True


class _Planner:
    """Checks a validated file against the database (read-only) and builds the plan."""

    def __init__(self, session: Session, spec: ImportFile, policy: PasswordPolicy) -> None:
        self.session, self.spec, self.policy = session, spec, policy
        self.problems: list[Problem] = []
        self.steps: list[Step] = []
        names = ([o.name for o in spec.organizations] + [u.organization for u in spec.users]
                 + [n.organization for n in spec.nodes]
                 + [m for c in spec.collaborations for m in c.organizations])
        self.db_orgs = _by_name(session, Organization, Organization.name, names)
        self.file_orgs = {o.name for o in spec.organizations}
        self.db_collabs = _by_name(
            session, Collaboration, Collaboration.name,
            [c.name for c in spec.collaborations] + [n.collaboration for n in spec.nodes],
            selectinload(Collaboration.organizations))
        self.members: dict[str, set[str]] = {
            name: {o.name for o in c.organizations} for name, c in self.db_collabs.items()}

    def problem(self, where: str, reason: str) -> None:
        self.problems.append(Problem(where, reason))

    def known_org(self, where: str, name: str) -> bool:
        if name in self.file_orgs or name in self.db_orgs:
            return True
        self.problem(where, f"{name!r} is not an organization in this file or the database"
                            + _did_you_mean(name, self.file_orgs | set(self.db_orgs)))
        return False

    def organizations(self) -> None:
        seen: dict[str, int] = {}
        for i, org in enumerate(self.spec.organizations):
            if _first_seen(self.problems, seen, org.name, f"organizations[{i}].name", i,
                           "organizations"):
                action = Action.EXISTS if org.name in self.db_orgs else Action.CREATE
                self.steps.append(Step("organizations", org.name, action, org))

    def collaborations(self) -> None:
        seen: dict[str, int] = {}
        for i, collab in enumerate(self.spec.collaborations):
            where = f"collaborations[{i}]"
            if not _first_seen(self.problems, seen, collab.name, f"{where}.name", i,
                               "collaborations"):
                continue
            listed: dict[str, int] = {}
            for k, member in enumerate(collab.organizations):
                at = f"{where}.organizations[{k}]"
                if self.known_org(at, member):
                    _first_seen(self.problems, listed, member, at, k, f"{where}.organizations")
            existing = self.db_collabs.get(collab.name)
            if existing is None:
                self.members[collab.name] = set(collab.organizations)
                self.steps.append(Step("collaborations", collab.name, Action.CREATE, collab,
                                       detail="encrypted" if collab.encrypted else ""))
                continue
            if existing.encrypted != collab.encrypted:
                self.problem(f"{where}.encrypted",
                             f"collaboration {collab.name!r} exists with encrypted="
                             f"{str(existing.encrypted).lower()}; the import does not change it")
            for k, member in enumerate(collab.organizations):
                known = member in self.file_orgs or member in self.db_orgs
                if known and member not in self.members[collab.name]:
                    self.problem(f"{where}.organizations[{k}]",
                                 f"{member!r} is not a member of the existing collaboration "
                                 f"{collab.name!r}; the import does not change its members")
            self.steps.append(Step("collaborations", collab.name, Action.EXISTS, collab))

    def users(self) -> None:
        spec = self.spec
        db_users = _by_name(self.session, User, User.username, [u.username for u in spec.users],
                            selectinload(User.organization))
        emails = _by_name(self.session, User, User.email,
                          [u.email for u in spec.users if u.email])
        roles = list(self.session.scalars(select(Role)))
        seen: dict[str, int] = {}
        seen_email: dict[str, int] = {}
        for i, user in enumerate(spec.users):
            where = f"users[{i}]"
            if not _first_seen(self.problems, seen, user.username, f"{where}.username", i,
                               "users"):
                continue
            org_ok = self.known_org(f"{where}.organization", user.organization)
            existing = db_users.get(user.username)
            if existing is not None:
                if existing.organization.name != user.organization:
                    self.problem(f"{where}.organization",
                                 f"user {user.username!r} exists in organization "
                                 f"{existing.organization.name!r}; the import does not move users")
                self.steps.append(Step("users", user.username, Action.EXISTS, user,
                                       organization=user.organization))
                continue
            if user.email:
                if user.email in emails:
                    self.problem(f"{where}.email", f"{user.email!r} is the email of user "
                                                   f"{emails[user.email].username!r}")
                _first_seen(self.problems, seen_email, user.email, f"{where}.email", i, "users")
            self._check_user_body(where, user)
            org = self.db_orgs.get(user.organization)
            role_ids = [] if not org_ok else self._role_ids(where, user, roles, org)
            self.steps.append(Step("users", user.username, Action.CREATE, user,
                                   organization=user.organization, role_ids=role_ids,
                                   detail=", ".join(user.roles)))

    def _check_user_body(self, where: str, user: UserEntry) -> None:
        """The API's own rules for a new user (``UserCreate`` and the server's password
        policy), reported at ``users[i].x``."""
        try:
            UserCreate(username=user.username, password=user.password.get_secret_value(),
                       firstname=user.firstname, lastname=user.lastname, email=user.email)
        except ValidationError as exc:
            for problem in validation_problems(exc, UserCreate):
                self.problem(f"{where}.{problem.field}", problem.reason)
            return
        try:
            self.policy.check(user.password.get_secret_value(), username=user.username)
        except PasswordPolicyError as exc:
            self.problem(f"{where}.password", exc.msg)

    def _role_ids(self, where: str, user: UserEntry, roles: list[Role],
                  org: Organization | None) -> list[int]:
        usable = [r for r in roles if r.organization_id is None
                  or (org is not None and r.organization_id == org.id)]
        ids: list[int] = []
        for k, name in enumerate(user.roles):
            matches = [r for r in usable if r.name == name]
            if len(matches) == 1:
                ids.append(matches[0].id)
                continue
            choices = ", ".join(sorted({r.name for r in usable}))
            self.problem(f"{where}.roles[{k}]",
                         f"{name!r} is ambiguous (a default role and one of the organization)"
                         if matches else f"{name!r} is not a role (roles: {choices})"
                         + _did_you_mean(name, {r.name for r in usable}))
        return ids

    def nodes(self) -> None:
        names = [n.name or f"{n.collaboration} - {n.organization} Node" for n in self.spec.nodes]
        db_names = _by_name(self.session, Node, Node.name, names,
                            selectinload(Node.organization), selectinload(Node.collaboration))
        seen_pair: dict[str, int] = {}
        seen_name: dict[str, int] = {}
        for i, (node, name) in enumerate(zip(self.spec.nodes, names, strict=True)):
            where = f"nodes[{i}]"
            org_ok = self.known_org(f"{where}.organization", node.organization)
            collab_ok = node.collaboration in self.members
            if not collab_ok:
                self.problem(f"{where}.collaboration", f"{node.collaboration!r} is not a "
                                                       "collaboration in this file or the database")
            if org_ok and collab_ok and node.organization not in self.members[node.collaboration]:
                self.problem(f"{where}.organization", f"{node.organization!r} is not a member of "
                                                      f"collaboration {node.collaboration!r}")
            pair = f"{node.organization!r} in {node.collaboration!r}"
            if not (_first_seen(self.problems, seen_pair, pair, where, i, "nodes")
                    and _first_seen(self.problems, seen_name, name, f"{where}.name", i, "nodes")):
                continue
            existing = self._existing_node(node)
            if existing is not None:
                self.steps.append(Step("nodes", existing.name, Action.EXISTS, node,
                                       organization=node.organization,
                                       collaboration=node.collaboration))
                continue
            if name in db_names:
                other = db_names[name]
                self.problem(f"{where}.name", f"a node named {name!r} exists already (of "
                                              f"{other.organization.name!r} in "
                                              f"{other.collaboration.name!r})")
            self.steps.append(Step("nodes", name, Action.CREATE, node,
                                   organization=node.organization,
                                   collaboration=node.collaboration))

    def _existing_node(self, node: NodeEntry) -> Node | None:
        org, collab = self.db_orgs.get(node.organization), self.db_collabs.get(node.collaboration)
        if org is None or collab is None:
            return None
        return self.session.scalar(select(Node).where(Node.organization_id == org.id,
                                                      Node.collaboration_id == collab.id))


def plan_import(*, session: Session, spec: ImportFile, path: Path | None = None,
                policy: PasswordPolicy = DEFAULT_PASSWORD_POLICY) -> Plan:
    """Check ``spec`` against the database (reads only) and decide create/exists per entry;
    passwords against ``policy`` (the server's).

    Raises:
        SettingsError: every problem found, each naming its entry and field.
    """
    planner = _Planner(session, spec, policy)
    planner.organizations()
    planner.collaborations()
    planner.users()
    planner.nodes()
    if planner.problems:
        raise SettingsError(path, planner.problems, what="import file")
    return Plan(planner.steps)


class ImportFailed(Exception):
    """A service refused an entry the plan accepted (a concurrent change); nothing is kept."""

    def __init__(self, where: str, reason: str) -> None:
        """``where``: the entry (``users[2]``), ``reason``: the service's message."""
        super().__init__(f"{where}: {reason}")
        self.where = where


def apply_plan(*, session: Session, plan: Plan,
               policy: PasswordPolicy = DEFAULT_PASSWORD_POLICY) -> list[CreatedNode]:
    """Create every *create* step through the services, in the caller's transaction.

    Returns:
        The nodes created, with their API keys (the only time they are known).

    Raises:
        ImportFailed: a service refused an entry; the caller must roll back.
    """
    identity = importer_identity()
    org_ids = {o.name: o.id for o in session.scalars(select(Organization))}
    collab_ids = {c.name: c.id for c in session.scalars(select(Collaboration))}
    encrypted = {c.name: c.encrypted for c in session.scalars(select(Collaboration))}
    created: list[CreatedNode] = []
    for step in plan.steps:
        if step.action is not Action.CREATE:
            continue
        try:
            if step.kind == "organizations":
                org_ids[step.name] = create_organization(
                    session=session, identity=identity, data=step.entry).id
            elif step.kind == "collaborations":
                collab = create_collaboration(session=session, identity=identity,
                                              data=CollaborationCreate(
                    name=step.name, encrypted=step.entry.encrypted,
                    organization_ids=[org_ids[m] for m in step.entry.organizations]))
                collab_ids[step.name], encrypted[step.name] = collab.id, collab.encrypted
            elif step.kind == "users":
                user: UserEntry = step.entry
                create_user(session=session, identity=identity, data=UserCreate(
                    username=user.username, password=user.password.get_secret_value(),
                    firstname=user.firstname, lastname=user.lastname, email=user.email,
                    organization_id=org_ids[user.organization], roles=step.role_ids),
                    password_policy=policy)
            else:
                node, api_key = create_node(session=session, identity=identity, data=NodeCreate(
                    collaboration_id=collab_ids[step.collaboration],
                    organization_id=org_ids[step.organization], name=step.name))
                created.append(CreatedNode(node.id, node.name, api_key, step.organization,
                                           step.collaboration, encrypted[step.collaboration]))
        except ServerDomainError as exc:
            raise ImportFailed(f"{step.kind} {step.name!r}", exc.msg) from exc
    return created

