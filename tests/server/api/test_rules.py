"""Rules: the public rule table with every v4 filter, in every spelling a client sends.

Expected sets come from the permission tables in ``v6flow_server.auth.permissions`` or from the
unfiltered list, never from the filter under test.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.api.staff import RESEARCHER, VIEWER, person, role_id, rule_id, rule_ids
from tests.server.conftest import World
from v6flow_server.auth.permissions import (
    OPERATION_NAMES,
    SCOPE_NAMES,
    VIEWER_RULES,
    Operation,
    Resource,
    RuleKey,
    Scope,
)

_BY_NAME_OP = {name: op for op, name in OPERATION_NAMES.items()}
_BY_NAME_SCOPE = {name: scope for scope, name in SCOPE_NAMES.items()}


def _all_rules(world: World) -> list[dict[str, Any]]:
    return list(world.ok("GET", "/rule", params={"per_page": 1000})["data"])


def _key(rule: dict[str, Any]) -> RuleKey:
    return RuleKey(Resource(rule["name"]), _BY_NAME_OP[rule["operation"]],
                   _BY_NAME_SCOPE[rule["scope"]])


@pytest.mark.parametrize("operation", list(Operation))
def test_operation_filter_accepts_names_v4_values_and_codes(world: World,
                                                            operation: Operation) -> None:
    """operation=VIEW, view and v select the same rules: those printed with that name."""
    name = OPERATION_NAMES[operation]
    expected = [r["id"] for r in _all_rules(world) if r["operation"] == name]
    assert expected
    for spelling in (name, name.lower(), operation.value):
        assert rule_ids(world, operation=spelling) == expected, spelling


@pytest.mark.parametrize("scope", list(Scope))
def test_scope_filter_accepts_names_v4_values_and_codes(world: World, scope: Scope) -> None:
    """scope=ORGANIZATION, organization and org select the same rules."""
    name = SCOPE_NAMES[scope]
    expected = [r["id"] for r in _all_rules(world) if r["scope"] == name]
    assert expected
    for spelling in (name, name.lower(), scope.value):
        assert rule_ids(world, scope=spelling) == expected, spelling


def test_name_filter_combines_with_operation_and_scope(world: World) -> None:
    """name=task&operation=CREATE&scope=COLLABORATION is exactly one rule."""
    (rule,) = [r for r in _all_rules(world)
               if (r["name"], r["operation"], r["scope"]) == ("task", "CREATE", "COLLABORATION")]
    assert rule_ids(world, name="task", operation="CREATE", scope="COLLABORATION") == [rule["id"]]
    assert {r["name"] for r in world.ok("GET", "/rule", params={
        "name": "task", "per_page": 1000})["data"]} == {"task"}


def test_unknown_operation_or_scope_is_400_naming_the_field(world: World) -> None:
    """A spelling that is no operation/scope is a 400 that names the filter."""
    for params, field in (({"operation": "fly"}, "operation"), ({"scope": "planet"}, "scope")):
        answer = world.call("GET", "/rule", params=params)
        assert answer.status_code == 400 and answer.json()["msg"].startswith(field)


def test_role_filter_lists_the_rules_of_the_role(world: World) -> None:
    """rule?role_id=<Viewer> and /role/<Viewer>/rule are the Viewer table of the server."""
    viewer_role = role_id(world, VIEWER)
    keys = {_key(r) for r in world.ok("GET", "/rule", params={
        "role_id": viewer_role, "per_page": 1000})["data"]}
    assert keys == set(VIEWER_RULES)
    listed = world.ok("GET", f"/role/{viewer_role}/rule", params={"per_page": 1000})["data"]
    assert {_key(r) for r in listed} == keys


def test_user_filter_lists_rules_of_roles_and_own_rules(world: World) -> None:
    """rule?user_id= is the union of the user's roles' rules and their own rules; the user
    may ask about themselves."""
    extra = rule_id(world, "port", "VIEW", "GLOBAL")
    me = person(world, world.org_ids[0], RESEARCHER, rules=(extra,))
    expected = sorted(set(rule_ids(world, role_id=role_id(world, RESEARCHER))) | {extra})
    assert rule_ids(world, user_id=me.id) == expected
    mine = world.ok("GET", "/rule", me.token, params={"user_id": me.id, "per_page": 1000})
    assert [r["id"] for r in mine["data"]] == expected


def test_user_filter_is_refused_for_users_one_cannot_see(world: World) -> None:
    """Finding 6, rules side: a Viewer of A cannot list the rules of a user of B (403, as
    GET /user/<id>); an unknown user is 404."""
    stranger = person(world, world.org_ids[1], VIEWER)
    viewer = person(world, world.org_ids[0], VIEWER)
    assert world.call("GET", f"/user/{stranger.id}", viewer.token).status_code == 403
    leak = world.call("GET", "/rule", viewer.token, params={"user_id": stranger.id})
    assert leak.status_code == 403 and "data" not in leak.json()
    assert world.call("GET", "/rule", viewer.token,
                      params={"user_id": 999_999_999}).status_code == 404


def test_get_rule_prints_names_and_unknown_is_404(world: World) -> None:
    """GET /rule/<id> matches its list entry; an unknown id is 404."""
    first = _all_rules(world)[0]
    assert world.ok("GET", f"/rule/{first['id']}") == first
    assert first["operation"] in OPERATION_NAMES.values()
    assert first["scope"] in SCOPE_NAMES.values()
    assert world.call("GET", "/rule/999999999").status_code == 404
