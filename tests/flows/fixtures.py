"""Fixtures shared by tests/flows and tests/prefect (imported by both conftests), and the
helpers of the flow tests that run with a node admin's minimum cell count."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from tests.flows.pooled import pandas_summary
from tests.flows.researcher import Researcher, make_researcher
from v6flow.algorithm import MIN_CELL_COUNT_ENV

SUMMARY_CONTEXT = Path(__file__).resolve().parents[2] / "flows" / "v6flow_flows" / "summary"
#: The federated summary's numeric statistics, all None for a withheld column.
NUMERIC_FIELDS = ("count", "missing", "mean", "std", "min", "max")


@pytest.fixture(scope="session")
def summary_image(algorithm_image: Any) -> str:
    """The summary algorithm image, built offline from flows/v6flow_flows/summary."""
    from v6flow_flows.summary import SUMMARY_IMAGE

    tag: str = algorithm_image(SUMMARY_CONTEXT, SUMMARY_IMAGE)
    return tag


@pytest.fixture(scope="session")
def researcher(federation: Any) -> Researcher:
    """A researcher login in the federation (v4 lets only member users create tasks)."""
    return make_researcher(federation)


@contextmanager
def node_algorithm_env(federation: Any, node: Any, env: Mapping[str, str]) -> Iterator[None]:
    """Run ``node`` with ``algorithm_env: env`` (as its admin would set it) inside the block;
    restart it with its original configuration afterwards, whatever happens."""
    original = node.config_path.read_text(encoding="utf-8")
    config = yaml.safe_load(original)
    config["algorithm_env"] = dict(env)
    try:
        federation.stop_node(node)
        node.config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        federation.start_node(node)
        federation.wait_online(node)
        yield
    finally:
        if node.proc is not None:
            federation.stop_node(node)
        node.config_path.write_text(original, encoding="utf-8")
        federation.start_node(node)
        federation.wait_online(node)


def small_numeric_columns(frames: Mapping[Any, pd.DataFrame], thresholds: Mapping[Any, int]
                          ) -> dict[str, list[Any]]:
    """The withholding rule computed by pandas: per numeric column, the organizations where
    it has ``0 < n < threshold`` non-missing values (columns without any are left out)."""
    hidden: dict[str, list[Any]] = {}
    for org, frame in frames.items():
        for name in frame.columns:
            s = frame[name]
            if (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
                    and 0 < int(s.count()) < thresholds[org]):
                hidden.setdefault(str(name), []).append(org)
    return hidden


def assert_summary_matches_suppressed_pandas(table: dict[str, Any],
                                             frames: Mapping[Any, pd.DataFrame],
                                             thresholds: Mapping[Any, int]) -> None:
    """The federated summary equals pandas on the pooled rows under the nodes' thresholds:

    - a numeric column some node holds ``0 < n < k`` values of has only None statistics and
      lists exactly those nodes, each with a reason naming ``k`` and the variable; every
      other numeric column equals pandas;
    - a category is None (and listed with the nodes) where a node counts ``0 < n < k`` of
      it, and equals pandas' pooled count otherwise.
    """
    hidden = small_numeric_columns(frames, thresholds)
    pooled = pandas_summary(pd.concat(frames.values(), ignore_index=True))
    assert table["rows"] == pooled["rows"]
    assert set(table["numeric"]) == set(pooled["numeric"])
    listed = table["suppressed"]["numeric"]
    assert {name: [e["organization"] for e in entries]
            for name, entries in listed.items()} == hidden
    for entries in listed.values():
        for entry in entries:
            assert str(thresholds[entry["organization"]]) in entry["reason"]
            assert MIN_CELL_COUNT_ENV in entry["reason"]
    for name, want in pooled["numeric"].items():
        got = table["numeric"][name]
        if name in hidden:
            assert got == dict.fromkeys(NUMERIC_FIELDS), name
            continue
        assert (got["count"], got["missing"]) == (want["count"], want["missing"]), name
        for key in ("mean", "std", "min", "max"):
            assert math.isclose(got[key], want[key], rel_tol=1e-9, abs_tol=1e-9), (name, key)
    assert set(table["categorical"]) == set(pooled["categorical"])
    for name, want in pooled["categorical"].items():
        small = {}
        for org, frame in frames.items():
            for value, n in frame[name].dropna().astype(str).value_counts().items():
                if 0 < int(n) < thresholds[org]:
                    small.setdefault(str(value), []).append(org)
        assert table["categorical"][name]["missing"] == want["missing"], name
        assert table["categorical"][name]["counts"] == {
            value: None if value in small else n for value, n in want["counts"].items()}, name
        assert table["suppressed"]["categories"].get(name, {}) == small, name
