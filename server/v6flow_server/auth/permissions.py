"""Permissions as data: resources, operations, scopes, the rule table and the default roles.

A rule is a ``(resource, operation, scope)`` triple. Scopes nest: a rule with a wider scope
implies the narrower ones (GLOBAL ⊃ COLLABORATION ⊃ ORGANIZATION ⊃ OWN). Nothing here builds
identifiers from strings; lookups go through these enums and tables.
"""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import NamedTuple


class Resource(StrEnum):
    """What a rule is about (the v4 ``Rule.name``)."""

    USER = "user"
    ORGANIZATION = "organization"
    COLLABORATION = "collaboration"
    ROLE = "role"
    NODE = "node"
    TASK = "task"
    RUN = "run"
    PORT = "port"
    EVENT = "event"
    STUDY = "study"
    RULE = "rule"


class Operation(StrEnum):
    """What may be done."""

    VIEW = "v"
    EDIT = "e"
    CREATE = "c"
    DELETE = "d"
    SEND = "s"
    RECEIVE = "r"


class Scope(StrEnum):
    """How far a rule reaches."""

    OWN = "own"
    ORGANIZATION = "org"
    COLLABORATION = "col"
    GLOBAL = "glo"


#: Width of each scope: a rule covers every scope of lower or equal width.
SCOPE_WIDTH: dict[Scope, int] = {
    Scope.OWN: 0,
    Scope.ORGANIZATION: 1,
    Scope.COLLABORATION: 2,
    Scope.GLOBAL: 3,
}

#: Names the API prints for rules (v4 prints the enum names).
OPERATION_NAMES: dict[Operation, str] = {
    Operation.VIEW: "VIEW",
    Operation.EDIT: "EDIT",
    Operation.CREATE: "CREATE",
    Operation.DELETE: "DELETE",
    Operation.SEND: "SEND",
    Operation.RECEIVE: "RECEIVE",
}
SCOPE_NAMES: dict[Scope, str] = {
    Scope.OWN: "OWN",
    Scope.ORGANIZATION: "ORGANIZATION",
    Scope.COLLABORATION: "COLLABORATION",
    Scope.GLOBAL: "GLOBAL",
}


class RuleKey(NamedTuple):
    """One permission."""

    resource: Resource
    operation: Operation
    scope: Scope


_R, _O, _S = Resource, Operation, Scope
_CRUD = (_O.VIEW, _O.EDIT, _O.CREATE, _O.DELETE)
_ORG_UP = (_S.ORGANIZATION, _S.COLLABORATION, _S.GLOBAL)

#: Operations and scopes that exist per resource; the cartesian product is the rule table.
_RULE_SPACE: dict[Resource, tuple[tuple[Operation, ...], tuple[Scope, ...]]] = {
    _R.USER: (_CRUD, (_S.OWN, *_ORG_UP)),
    _R.ORGANIZATION: (_CRUD, _ORG_UP),
    _R.COLLABORATION: (_CRUD, _ORG_UP),
    _R.ROLE: (_CRUD, _ORG_UP),
    _R.NODE: (_CRUD, _ORG_UP),
    _R.TASK: (_CRUD, _ORG_UP),
    _R.RUN: ((_O.VIEW,), _ORG_UP),
    _R.PORT: ((_O.VIEW,), _ORG_UP),
    _R.EVENT: ((_O.SEND, _O.RECEIVE), _ORG_UP),
    _R.STUDY: (_CRUD, _ORG_UP),
    _R.RULE: ((_O.VIEW,), (_S.GLOBAL,)),
}

#: Every rule the server knows; seeded into the ``rule`` table at start-up.
RULE_TABLE: tuple[RuleKey, ...] = tuple(
    RuleKey(resource, operation, scope)
    for resource, (operations, scopes) in _RULE_SPACE.items()
    for operation in operations
    for scope in scopes
)


def _rules(*triples: tuple[Resource, Operation, Scope]) -> frozenset[RuleKey]:
    keys = frozenset(RuleKey(*t) for t in triples)
    unknown = keys - frozenset(RULE_TABLE)
    if unknown:  # a programming error in the tables below, caught at import in tests
        raise ValueError(f"rules outside the rule table: {sorted(unknown)}")
    return keys


VIEWER_RULES = _rules(
    (_R.USER, _O.EDIT, _S.OWN),  # v4: everyone manages their own account
    (_R.USER, _O.DELETE, _S.OWN),
    (_R.USER, _O.VIEW, _S.ORGANIZATION),
    (_R.ORGANIZATION, _O.VIEW, _S.COLLABORATION),
    (_R.COLLABORATION, _O.VIEW, _S.ORGANIZATION),
    (_R.ROLE, _O.VIEW, _S.ORGANIZATION),
    (_R.NODE, _O.VIEW, _S.ORGANIZATION),
    (_R.TASK, _O.VIEW, _S.ORGANIZATION),
    (_R.RUN, _O.VIEW, _S.ORGANIZATION),
    (_R.PORT, _O.VIEW, _S.ORGANIZATION),
    (_R.EVENT, _O.RECEIVE, _S.ORGANIZATION),
    (_R.STUDY, _O.VIEW, _S.ORGANIZATION),
    (_R.RULE, _O.VIEW, _S.GLOBAL),
)
RESEARCHER_RULES = VIEWER_RULES | _rules(
    (_R.TASK, _O.VIEW, _S.COLLABORATION),
    (_R.RUN, _O.VIEW, _S.COLLABORATION),
    (_R.NODE, _O.VIEW, _S.COLLABORATION),
    (_R.TASK, _O.CREATE, _S.COLLABORATION),
    (_R.TASK, _O.DELETE, _S.ORGANIZATION),
    (_R.EVENT, _O.SEND, _S.ORGANIZATION),
    (_R.EVENT, _O.RECEIVE, _S.COLLABORATION),
)
ORGANIZATION_ADMIN_RULES = RESEARCHER_RULES | _rules(
    (_R.USER, _O.CREATE, _S.ORGANIZATION),
    (_R.USER, _O.EDIT, _S.ORGANIZATION),
    (_R.USER, _O.DELETE, _S.ORGANIZATION),
    (_R.ORGANIZATION, _O.EDIT, _S.ORGANIZATION),
    (_R.ROLE, _O.CREATE, _S.ORGANIZATION),
    (_R.ROLE, _O.EDIT, _S.ORGANIZATION),
    (_R.ROLE, _O.DELETE, _S.ORGANIZATION),
    (_R.NODE, _O.CREATE, _S.ORGANIZATION),
    (_R.NODE, _O.EDIT, _S.ORGANIZATION),
    (_R.NODE, _O.DELETE, _S.ORGANIZATION),
)
COLLABORATION_ADMIN_RULES = ORGANIZATION_ADMIN_RULES | _rules(
    (_R.USER, _O.VIEW, _S.COLLABORATION),
    (_R.USER, _O.CREATE, _S.COLLABORATION),
    (_R.USER, _O.EDIT, _S.COLLABORATION),  # v4 4.15: edit users of the collaboration
    (_R.ROLE, _O.VIEW, _S.COLLABORATION),  # v4 4.15: see the roles they may assign there
    (_R.COLLABORATION, _O.EDIT, _S.COLLABORATION),
    (_R.NODE, _O.CREATE, _S.COLLABORATION),
    (_R.NODE, _O.EDIT, _S.COLLABORATION),
    (_R.NODE, _O.DELETE, _S.COLLABORATION),
    (_R.TASK, _O.DELETE, _S.COLLABORATION),
    (_R.EVENT, _O.SEND, _S.COLLABORATION),
    (_R.STUDY, _O.VIEW, _S.COLLABORATION),
    (_R.STUDY, _O.CREATE, _S.COLLABORATION),
    (_R.STUDY, _O.EDIT, _S.COLLABORATION),
    (_R.STUDY, _O.DELETE, _S.COLLABORATION),
)
ROOT_RULES = frozenset(RULE_TABLE)

#: Node role (v4 default_roles ``node``).
NODE_RULES = _rules(
    (_R.COLLABORATION, _O.VIEW, _S.ORGANIZATION),
    (_R.NODE, _O.VIEW, _S.ORGANIZATION),
    (_R.NODE, _O.EDIT, _S.ORGANIZATION),
    (_R.ORGANIZATION, _O.VIEW, _S.ORGANIZATION),
    (_R.ORGANIZATION, _O.VIEW, _S.COLLABORATION),
    (_R.ORGANIZATION, _O.EDIT, _S.ORGANIZATION),
    (_R.PORT, _O.VIEW, _S.ORGANIZATION),
    (_R.RUN, _O.VIEW, _S.COLLABORATION),
    (_R.STUDY, _O.VIEW, _S.ORGANIZATION),
    (_R.TASK, _O.VIEW, _S.COLLABORATION),
)
#: Container role: the node role minus the EDIT rules.
CONTAINER_RULES = frozenset(rule for rule in NODE_RULES if rule.operation is not Operation.EDIT)


class DefaultRole(NamedTuple):
    """A global role seeded at start-up."""

    name: str
    description: str
    rules: frozenset[RuleKey]


DEFAULT_ROLES: tuple[DefaultRole, ...] = (
    DefaultRole("Root", "Every rule", ROOT_RULES),
    DefaultRole("Collaboration Admin", "Manage collaborations and their members",
                COLLABORATION_ADMIN_RULES),
    DefaultRole("Organization Admin", "Manage an organization", ORGANIZATION_ADMIN_RULES),
    DefaultRole("Researcher", "Create and view tasks", RESEARCHER_RULES),
    DefaultRole("Viewer", "View the organization's resources", VIEWER_RULES),
)
ROOT_ROLE = "Root"


def widest_scope(rules: frozenset[RuleKey], resource: Resource,
                 operation: Operation) -> Scope | None:
    """The widest scope at which ``rules`` allow ``operation`` on ``resource``, if any."""
    scopes = [r.scope for r in rules if r.resource is resource and r.operation is operation]
    return max(scopes, key=SCOPE_WIDTH.__getitem__) if scopes else None


def allows(rules: frozenset[RuleKey], resource: Resource, operation: Operation,
           scope: Scope) -> bool:
    """Whether ``rules`` allow ``operation`` on ``resource`` at (at least) ``scope``."""
    held = widest_scope(rules, resource, operation)
    return held is not None and SCOPE_WIDTH[held] >= SCOPE_WIDTH[scope]


@functools.lru_cache(maxsize=1024)
def rule_key(name: str, operation: str, scope: str) -> RuleKey | None:
    """The RuleKey of a stored rule row, or None for a row this version does not know
    (remembered: every request of a user reads its rules)."""
    try:
        return RuleKey(Resource(name), Operation(operation), Scope(scope))
    except ValueError:
        return None
