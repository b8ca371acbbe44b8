"""docs/userclient-compat.md: every 4.15.2 UserClient method, whether it works against
``v6flow server``, and the test that shows it.

What it does:
1. enumerates the methods of the installed reference client
   (``.cache/vantage6-client-4.15.2``, the venv the ``reference_client`` fixture builds) and
   checks them against the table of ``tests/e2e/test_userclient_inventory.py``;
2. runs every test that table names, in one pytest (``--junitxml``), unless ``--junit``
   gives the XML of an earlier run;
3. writes the Markdown table (method, works / partly / fails / excluded, the tests and
   their outcomes) and, for every test that does not pass, what is missing in the server.

Usage (from the repository root; Docker and PostgreSQL running, as for the e2e tests)::

    python benchmarks/userclient_inventory.py [--junit results.xml] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.e2e.test_userclient_inventory import (  # noqa: E402
    INVENTORY,
    Driven,
    Excluded,
    client_methods,
    driving_tests,
)
from tests.fixtures.reference import VENV_DIR, ReferencePython  # noqa: E402

#: What the server lacks, per test that is expected to fail (strict xfail) until it is fixed.
GAPS: dict[str, str] = {}

STORE_GROUPS = {"store", "algorithm"}
OUTCOME_WORDS = {"passed": "passes", "xfail": "fails: strict xfail", "failed": "FAILS",
                 "skipped": "skipped", "not run": "not run"}


def say(message: str) -> None:
    """Progress on stderr."""
    print(f"- {message}", file=sys.stderr)


def run_tests(tests: list[str], junit: Path) -> None:
    """One pytest over every named test, writing JUnit XML (failures are data, not errors)."""
    say(f"running {len(tests)} tests (pytest --junitxml={junit})")
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    f"--junitxml={junit}", *tests], cwd=REPO_ROOT, check=False)


def duration(junit: Path) -> float:
    """Seconds the test run took (the JUnit ``testsuite`` time)."""
    return sum(float(suite.get("time", 0)) for suite in ET.parse(junit).getroot().iter(
        "testsuite"))


def outcomes(junit: Path) -> dict[str, str]:
    """Node id -> passed / failed / xfail / skipped, from JUnit XML."""
    found: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        module = case.get("classname", "").replace(".", "/")
        node_id = f"{module}.py::{case.get('name')}"
        kinds = {child.tag: child for child in case}
        if "failure" in kinds or "error" in kinds:
            outcome = "failed"
        elif "skipped" in kinds:
            outcome = "xfail" if kinds["skipped"].get("type") == "pytest.xfail" else "skipped"
        else:
            outcome = "passed"
        if found.get(node_id) != "failed":
            found[node_id] = outcome
    return found


def outcome_of(test: str, results: dict[str, str]) -> str:
    """A named test's outcome; a parametrized one passes only if every case passes."""
    cases = [o for i, o in results.items() if i == test or i.startswith(test + "[")]
    if not cases:
        return "not run"
    for worst in ("failed", "xfail", "skipped"):
        if worst in cases:
            return worst
    return "passed"


def status(tests: tuple[str, ...], results: dict[str, str]) -> str:
    """works (every test passes), partly, fails (none passes) or not run."""
    seen = [outcome_of(t, results) for t in tests]
    if all(o == "passed" for o in seen):
        return "works"
    if all(o == "not run" for o in seen):
        return "not run"
    return "partly" if "passed" in seen else "fails"


def short(test: str) -> str:
    """``file.py::test`` without the tests/e2e/ folder."""
    return test.removeprefix("tests/e2e/")


def render(version: str, methods: list[str], results: dict[str, str], seconds: float) -> str:
    """The Markdown page."""
    rows: list[str] = []
    counts: Counter[str] = Counter()
    def order(method: str) -> tuple[bool, int, str]:  # the algorithm store last
        return (method.split(".")[0] in STORE_GROUPS, method.count("."), method)

    for method in sorted(methods, key=order):
        entry = INVENTORY[method]
        if isinstance(entry, Excluded):
            state, cell = "excluded", entry.reason
        else:
            assert isinstance(entry, Driven)
            state = status(entry.tests, results)
            cell = "<br>".join(f"`{short(t)}` {OUTCOME_WORDS[outcome_of(t, results)]}"
                               for t in entry.tests)
        counts[state] += 1
        rows.append(f"| `{method}` | {state} | {cell} |")
    tests = driving_tests()
    ran = Counter(outcome_of(t, results) for t in tests)
    gaps = [t for t in tests if outcome_of(t, results) != "passed"]
    lines = [
        "# The vantage6 UserClient against v6flow server",
        "",
        "Generated by `python benchmarks/userclient_inventory.py` from a run of the tests it "
        "names; do not edit by hand.",
        "",
        f"Every public method of the unmodified `vantage6-client=={version}` `UserClient` and "
        "of its sub-clients, enumerated from the installed package by "
        "`tests/e2e/test_userclient_inventory.py` (which fails when the client has a method "
        "its table does not list). Each named test runs the real client in its own venv "
        "against a real `v6flow server` (real nodes and containers where a call needs "
        "results) and checks the outcome with an independent REST read or against the data "
        "itself.",
        "",
        f"**{len(methods)} methods:** "
        + ", ".join(f"{counts[k]} {k}" for k in ("works", "partly", "fails", "not run",
                                                  "excluded") if counts[k]) + ". "
        f"**{len(tests)} tests** (one pytest run, {seconds:.0f} s): "
        + ", ".join(f"{ran[k]} {OUTCOME_WORDS[k]}" for k in OUTCOME_WORDS if ran[k]) + ".",
        "",
        "*works*: every test passes; *partly*: some cases are expected to fail until the "
        "server gap below is closed (strict xfail: the test turns red once it passes); "
        "*excluded*: the algorithm store (a separate service) and a helper that makes no "
        "request.",
        "",
        "| Method | Status | Tests |",
        "|---|---|---|",
        *rows,
        "",
        "## What does not work yet",
        "",
    ]
    if not gaps:
        lines.append("Nothing: every named test passes.")
    for test in gaps:
        lines.append(f"- `{short(test)}` ({outcome_of(test, results)}): "
                     + GAPS.get(test, "not expected; see the test's output."))
    return "\n".join(lines) + "\n"


def main() -> None:
    """Enumerate, run (or read) the tests, write the page."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--junit", type=Path, help="JUnit XML of an earlier run")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "userclient-compat.md")
    args = parser.parse_args()
    version, methods = client_methods(ReferencePython(VENV_DIR / "bin" / "python"))
    missing = sorted(set(methods) ^ INVENTORY.keys())
    if missing:
        raise SystemExit(f"the inventory and the client disagree on: {missing}")
    junit = args.junit
    if junit is None:
        junit = Path(tempfile.mkdtemp(prefix="userclient-inventory-")) / "junit.xml"
        run_tests(driving_tests(), junit)
    page = render(version, methods, outcomes(junit), duration(junit))
    args.out.write_text(page, encoding="utf-8")
    say(f"wrote {args.out}")


if __name__ == "__main__":
    main()
