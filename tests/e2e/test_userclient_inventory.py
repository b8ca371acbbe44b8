"""Every public method of the unmodified vantage6-client 4.15.2 ``UserClient`` is accounted
for: driven by a named test against ``v6flow server`` (the real client in its own venv), or
excluded with a reason.

The methods are enumerated from the installed reference client (``reference_inventory.py``),
so a method a new client version adds, and that :data:`INVENTORY` does not list, fails
:func:`test_every_client_method_is_listed`. ``benchmarks/userclient_inventory.py`` runs the
named tests and prints the outcome into ``docs/userclient-compat.md``.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.fixtures.reference import ReferencePython

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = (Path(__file__).parent / "reference_inventory.py").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Driven:
    """Pytest node ids (``path::test``, parametrizations included) that drive the method."""

    tests: tuple[str, ...]


@dataclass(frozen=True)
class Excluded:
    """Why no test drives the method."""

    reason: str


def by(*tests: str) -> Driven:
    """The tests that drive a method."""
    return Driven(tests)


ADMIN_A = "tests/e2e/test_userclient_admin_a.py::"
ADMIN_B = "tests/e2e/test_userclient_admin_b.py::"
ACCOUNTS = "tests/e2e/test_userclient_accounts.py::"
COMPAT = "tests/e2e/test_compat.py::"
BLOBS = "tests/e2e/test_blobs_v4.py::"
REST = "tests/e2e/test_userclient_rest.py::"

STORE_REGISTRY = Excluded(
    "algorithm store: registers or selects an algorithm store at the server "
    "(`/algorithmstore`); the store is a separate service v6flow does not provide")
STORE_SERVICE = Excluded(
    "algorithm store: a request to the algorithm store service itself, not to the server")

#: Client method (dotted from the ``UserClient``) -> the tests that drive it, or why none.
INVENTORY: dict[str, Driven | Excluded] = {
    # -- UserClient itself
    "authenticate": by(ACCOUNTS + "test_two_factor_enrolment_and_login",
                       ACCOUNTS + "test_change_my_password"),
    "check_if_blob_store_enabled": by(REST + "test_check_if_blob_store_enabled",
                                      BLOBS + "test_reference_user_client_uses_the_blob_store"),
    "generate_path_to": Excluded("local: joins host, port, API path and endpoint into a URL; "
                                 "makes no request (every request of every test uses it)"),
    "refresh_token": by(REST + "test_refresh_token"),
    "request": by(REST + "test_request"),
    "setup_collaboration": by(REST + "test_setup_collaboration"),
    "setup_encryption": by(REST + "test_setup_encryption"),
    "wait_for_results": by(COMPAT + "test_reference_user_client_creates_task_and_gets_results",
                           BLOBS + "test_reference_user_client_works_without_a_blob_store"),
    "wait_for_task_completion": by(REST + "test_wait_for_task_completion"),
    # -- organization
    "organization.create": by(ADMIN_A + "test_organization_create"),
    "organization.delete": by(ADMIN_A + "test_organization_delete"),
    "organization.get": by(ADMIN_A + "test_organization_get"),
    "organization.list": by(ADMIN_A + "test_organization_list"),
    "organization.update": by(ADMIN_A + "test_organization_update"),
    # -- collaboration
    "collaboration.add_organization": by(ADMIN_A + "test_collaboration_add_organization"),
    "collaboration.create": by(ADMIN_A + "test_collaboration_create"),
    "collaboration.delete": by(ADMIN_A + "test_collaboration_delete"),
    "collaboration.get": by(ADMIN_A + "test_collaboration_get"),
    "collaboration.list": by(ADMIN_A + "test_collaboration_list",
                             REST + "test_collaboration_list_scopes"),
    "collaboration.remove_organization": by(ADMIN_A + "test_collaboration_remove_organization"),
    "collaboration.update": by(ADMIN_A + "test_collaboration_update"),
    # -- study
    "study.add_organization": by(ADMIN_A + "test_study_add_organization"),
    "study.create": by(ADMIN_A + "test_study_create"),
    "study.delete": by(ADMIN_A + "test_study_delete"),
    "study.get": by(ADMIN_A + "test_study_get"),
    "study.list": by(ADMIN_A + "test_study_list"),
    "study.remove_organization": by(ADMIN_A + "test_study_remove_organization"),
    "study.update": by(ADMIN_A + "test_study_update"),
    # -- node
    "node.create": by(ADMIN_A + "test_node_create"),
    "node.delete": by(ADMIN_A + "test_node_delete"),
    "node.get": by(ADMIN_A + "test_node_get"),
    "node.kill_tasks": by(REST + "test_node_kill_tasks"),
    "node.list": by(ADMIN_A + "test_node_list"),
    "node.update": by(ADMIN_A + "test_node_update"),
    # -- user
    "user.create": by(ADMIN_B + "test_user_create"),
    "user.delete": by(ADMIN_B + "test_user_delete",
                      REST + "test_user_delete_leaves_no_token_alive"),
    "user.get": by(ADMIN_B + "test_user_get"),
    "user.list": by(ADMIN_B + "test_user_list"),
    "user.update": by(ADMIN_B + "test_user_update_by_an_admin",
                      ADMIN_B + "test_user_update_of_oneself",
                      ADMIN_B + "test_user_update_granting_oneself_root_is_refused"),
    # -- role and rule
    "role.create": by(ADMIN_B + "test_role_create"),
    "role.delete": by(ADMIN_B + "test_role_delete"),
    "role.get": by(ADMIN_B + "test_role_get"),
    "role.list": by(ADMIN_B + "test_role_list"),
    "role.update": by(ADMIN_B + "test_role_update"),
    "rule.get": by(ADMIN_B + "test_rule_get"),
    "rule.list": by(ADMIN_B + "test_rule_list"),
    # -- task, run, result
    "task.create": by(COMPAT + "test_reference_user_client_creates_task_and_gets_results",
                      ADMIN_A + "test_task_create_in_a_study",
                      BLOBS + "test_reference_user_client_uses_the_blob_store",
                      REST + "test_setup_collaboration",
                      REST + "test_setup_encryption_in_an_encrypted_collaboration"),
    "task.delete": by(REST + "test_task_delete",
                      REST + "test_task_delete_leaves_no_id_to_reuse"),
    "task.get": by(REST + "test_task_get"),
    "task.kill": by(REST + "test_task_kill"),
    "task.list": by(REST + "test_task_list", ADMIN_A + "test_task_create_in_a_study"),
    "run.from_task": by(REST + "test_run_from_task",
                        REST + "test_run_lists_leave_inputs_out_and_run_get_decodes_them"),
    "run.get": by(REST + "test_run_get"),
    "run.list": by(REST + "test_run_list", REST + "test_run_list_time_filters",
                   REST + "test_run_lists_leave_inputs_out_and_run_get_decodes_them"),
    "result.from_task": by(REST + "test_result_from_task"),
    "result.get": by(REST + "test_result_get"),
    # -- util
    "util.change_my_password": by(ACCOUNTS + "test_change_my_password"),
    "util.generate_private_key": by(REST + "test_util_generate_private_key"),
    "util.get_server_health": by(REST + "test_util_get_server_health"),
    "util.get_server_version": by(REST + "test_util_get_server_version"),
    "util.reset_my_password": by(ACCOUNTS + "test_reset_and_set_my_password"),
    "util.reset_two_factor_auth": by(ACCOUNTS + "test_reset_and_set_two_factor_auth"),
    "util.set_my_password": by(ACCOUNTS + "test_reset_and_set_my_password"),
    "util.set_two_factor_auth": by(ACCOUNTS + "test_reset_and_set_two_factor_auth"),
    # -- algorithm store (a separate service)
    "store.create": STORE_REGISTRY,
    "store.delete": STORE_REGISTRY,
    "store.get": STORE_REGISTRY,
    "store.list": STORE_REGISTRY,
    "store.set": STORE_REGISTRY,
    "store.update": STORE_REGISTRY,
    "store.policy.get": STORE_SERVICE,
    "store.review.approve": STORE_SERVICE,
    "store.review.create": STORE_SERVICE,
    "store.review.delete": STORE_SERVICE,
    "store.review.get": STORE_SERVICE,
    "store.review.list": STORE_SERVICE,
    "store.review.reject": STORE_SERVICE,
    "store.role.create": STORE_SERVICE,
    "store.role.delete": STORE_SERVICE,
    "store.role.edit": STORE_SERVICE,
    "store.role.list": STORE_SERVICE,
    "store.rule.list": STORE_SERVICE,
    "store.user.delete": STORE_SERVICE,
    "store.user.get": STORE_SERVICE,
    "store.user.list": STORE_SERVICE,
    "store.user.register": STORE_SERVICE,
    "store.user.update": STORE_SERVICE,
    "algorithm.create": STORE_SERVICE,
    "algorithm.delete": STORE_SERVICE,
    "algorithm.get": STORE_SERVICE,
    "algorithm.invalidate": STORE_SERVICE,
    "algorithm.list": STORE_SERVICE,
    "algorithm.update": STORE_SERVICE,
}


def client_methods(python: ReferencePython) -> tuple[str, list[str]]:
    """The reference client's version and every public method it has (dotted names)."""
    out = python.run_json(SCRIPT)
    return str(out["version"]), [str(m) for m in out["methods"]]


def driving_tests() -> list[str]:
    """Every node id the inventory names, each once, in table order."""
    return list(dict.fromkeys(t for entry in INVENTORY.values() if isinstance(entry, Driven)
                              for t in entry.tests))


def collected(paths: list[str]) -> set[str]:
    """The node ids pytest collects from ``paths`` (nothing runs)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         *paths], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"collection failed:\n{proc.stdout}\n{proc.stderr}"
    return {line.strip() for line in proc.stdout.splitlines() if "::" in line}


def exists(node_id: str, ids: set[str]) -> bool:
    """A node id names a collected test (or every parametrization of one)."""
    return node_id in ids or any(i.startswith(node_id + "[") for i in ids)


def test_every_client_method_is_listed(reference_client: ReferencePython) -> None:
    """The inventory lists exactly the public methods the reference client has."""
    version, methods = client_methods(reference_client)
    assert version == "4.15.2"
    assert sorted(set(methods) - INVENTORY.keys()) == [], "client methods missing from the table"
    assert sorted(INVENTORY.keys() - set(methods)) == [], "table lists methods the client lacks"


def test_every_named_test_exists() -> None:
    """Every test the inventory names is collected by pytest."""
    tests = driving_tests()
    ids = collected(sorted({t.split("::")[0] for t in tests}))
    assert [t for t in tests if not exists(t, ids)] == []


def test_only_the_algorithm_store_and_local_helpers_are_excluded() -> None:
    """Exclusions are the algorithm store and calls that make no request, nothing else."""
    excluded = {m for m, e in INVENTORY.items() if isinstance(e, Excluded)}
    store = {m for m in excluded if m.split(".")[0] in {"store", "algorithm"}}
    assert excluded - store == {"generate_path_to"}
    assert all(INVENTORY[m] in (STORE_REGISTRY, STORE_SERVICE) for m in store)
