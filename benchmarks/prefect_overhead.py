"""What Prefect adds to a federated call: tables of medians, against a real local Prefect server.

Setup: a local ``prefect server start`` (not the ephemeral one; started here, or reused with
``--prefect-url``) and a federation like ``v6flow demo`` (v6flow server + 3 real node
processes on Docker, the ``v6flow/summary`` image). The partial is ``summary`` of one
column (``age``), i.e. a federated mean: trivial work on the node, so the numbers are
dominated by orchestration (server round trips, container start on the nodes).

Method: wall clock (``time.perf_counter``). Every round runs each mode once, in a rotating
order, so drift of a shared machine hits all modes alike; differences are taken per round
(paired) and then summarised. Reported per row: median, p25-p75 and n.

1. Whole call, 1 and 3 organizations (the issue's target: the flow adds ≤ 150 ms):
   - ``plain``: ``federated.run_partial`` through the plain client (login included);
   - ``flow``: the same inside ``await flow(...)`` via ``v6flow.prefect.run_partial``
     (flow run, states, one task run per organization, artifacts, labels, cancel watch);
   - ``empty flow``: an async flow whose body returns at once: Prefect's own floor;
   each flow mode twice: with Prefect's default settings, and ``tuned`` (below).
   ``flow - plain`` is what the flow adds; ``empty flow`` is the part no flow can avoid;
   the rest (``flow - plain - empty flow``) is what v6flow's adapter adds on top.
   Each is given for the whole call and for its "edges" only (:class:`Edges`: call start
   to the first server task, last result to call end), which leaves out the wait for the
   nodes: on a loaded machine their container starts vary by seconds, while the edges
   hold every flow-run, task-run and artifact round trip that is on the critical path.
2. The adapter inside one flow run (same logged-in client, 3 organizations): with
   artifacts, without (``artifacts=False``) and the plain fan-out; and 50 concurrent
   awaits of 0.2 s as Prefect task runs vs plain (Prefect's cost per task run).

``tuned``: Prefect settings that cut the engine's cost per flow call without turning a
feature off (see README "Benchmarks"): ``PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK`` set
to a saved filesystem block (else every flow run builds a throwaway *sync* API client, with
its TLS context, and makes a blocking ``GET /storage`` call to find the server's default
result storage), ``PREFECT_CLIENT_CSRF_SUPPORT_ENABLED=false`` (the local server enforces no
CSRF; else each new API client first fetches a token), and one process-wide API client
(``AsyncClientContext``) instead of a new client (TLS context, connection) per flow call.

Usage: ``python benchmarks/prefect_overhead.py [--repeat 7] [--prefect-url URL]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ui_screenshot import demo_federation, local_prefect_server

FAN_OUT = 50
SLEEP = 0.2
COLUMN = "age"
TARGET_MS = 150.0
RESULTS_BLOCK = "v6flow-overhead-results"


def _ms(values: Sequence[float]) -> list[float]:
    return [1000 * v for v in values]


def _summary(values_ms: Sequence[float], signed: bool = False) -> tuple[str, str, str]:
    """(median, p25-p75, n) as text."""
    fmt = "{:+.0f}" if signed else "{:.0f}"
    median = statistics.median(values_ms)
    if len(values_ms) >= 2:
        q1, _, q3 = statistics.quantiles(values_ms, n=4, method="inclusive")
    else:
        q1 = q3 = median
    return fmt.format(median), f"{fmt.format(q1)}..{fmt.format(q3)}", str(len(values_ms))


class Edges:
    """When a call created its first server task and fetched its last result.

    Benchmark instrumentation (a wrapper around ``httpx.AsyncClient.send`` that reads two
    clocks for requests to the v6flow server). ``lead`` (call start → first ``POST /task``
    sent) plus ``tail`` (last ``GET /result`` answered → call end) is the part of a call
    outside the wait for the nodes, where container starts on a loaded machine make most
    of the noise; the two modes' waits run the same client code.
    """

    prefix = ""
    first_task: float | None = None
    last_result: float | None = None

    @classmethod
    def install(cls, server_url: str) -> None:
        """Wrap ``httpx.AsyncClient.send`` once."""
        import httpx

        cls.prefix = server_url.rstrip("/")
        original = httpx.AsyncClient.send

        async def send(client: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            url = str(request.url)
            ours = url.startswith(cls.prefix)
            if ours and request.method == "POST" and url.rstrip("/").endswith("/task"):
                cls.first_task = cls.first_task or time.perf_counter()
            response = await original(client, request, *args, **kwargs)
            if ours and request.method == "GET" and "/result/" in url:
                cls.last_result = time.perf_counter()
            return response

        httpx.AsyncClient.send = send  # type: ignore[method-assign]

    @classmethod
    def reset(cls) -> None:
        cls.first_task = cls.last_result = None


async def _timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any, float | None]:
    """(seconds, value, lead + tail seconds or None when no server task was made)."""
    Edges.reset()
    started = time.perf_counter()
    value = await call()
    ended = time.perf_counter()
    edges = None
    if Edges.first_task is not None and Edges.last_result is not None:
        edges = (Edges.first_task - started) + (ended - Edges.last_result)
    return ended - started, value, edges


async def tuned_settings_block() -> str:
    """Save a local filesystem block to serve as the default result storage (tuned mode)."""
    from prefect.filesystems import LocalFileSystem

    path = Path(tempfile.mkdtemp(prefix="v6flow-overhead-results-"))
    await LocalFileSystem(basepath=str(path)).asave(RESULTS_BLOCK, overwrite=True)
    return f"local-file-system/{RESULTS_BLOCK}"


class PrefectModes:
    """Prefect's default settings, or the tuned ones (module docstring)."""

    def __init__(self, block: str) -> None:
        from prefect.settings import (
            PREFECT_CLIENT_CSRF_SUPPORT_ENABLED,
            PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK,
        )

        self.settings = {PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK: block,
                         PREFECT_CLIENT_CSRF_SUPPORT_ENABLED: False}
        self.shared: Any = None

    @contextlib.asynccontextmanager
    async def __call__(self, tuned: bool) -> AsyncIterator[None]:
        """Run the body with the tuned settings and one shared API client, or as is."""
        if not tuned:
            yield
            return
        from prefect.context import AsyncClientContext
        from prefect.settings import temporary_settings

        with temporary_settings(self.settings):
            if self.shared is None:  # what a long-lived process would hold
                self.shared = AsyncClientContext()
                await self.shared.client.__aenter__()
            token = AsyncClientContext.__var__.set(self.shared)
            try:
                yield
            finally:
                AsyncClientContext.__var__.reset(token)

    async def close(self) -> None:
        """Close the shared client."""
        if self.shared is not None:
            await self.shared.client.__aexit__(None, None, None)


def build(credentials: Any, collaboration_id: int) -> dict[str, Any]:
    """The flows and plain functions under test (Prefect imported only after setup)."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    from v6flow.client import federated
    from v6flow.client.federated import PartialRequest
    from v6flow.prefect import run_partial
    from v6flow_flows.summary import SUMMARY_IMAGE
    from v6flow_flows.summary.combine import combine_summaries

    request = PartialRequest(collaboration_id=collaboration_id, image=SUMMARY_IMAGE,
                             method="summary", kwargs={"columns": [COLUMN]})

    def mean(partials: dict[int, Any]) -> float:
        return float(combine_summaries(partials)["numeric"][COLUMN]["mean"])

    async def plain_mean(organizations: list[int]) -> float:
        async with credentials.get_async_client() as client:
            return mean(await federated.run_partial(client, request, organizations))

    @flow(name="overhead-federated-mean", persist_result=False)
    async def flow_mean(organizations: list[int]) -> float:
        partials = await run_partial(credentials, collaboration_id, "summary",
                                     image=SUMMARY_IMAGE, organizations=organizations,
                                     kwargs={"columns": [COLUMN]})
        return mean(partials)

    @flow(name="overhead-empty", persist_result=False)
    async def empty_flow(organizations: list[int]) -> int:
        return len(organizations)

    @flow(name="overhead-adapter-vs-plain", persist_result=False)
    async def adapter_vs_plain(repeat: int) -> dict[str, list[float]]:
        times: dict[str, list[float]] = {
            f"{mode}{part}": [] for mode in ("adapter", "bare", "plain") for part in ("", "@")}
        modes: dict[str, Callable[[], Awaitable[Any]]] = {
            "adapter": lambda: run_partial(client, collaboration_id, "summary",
                                           image=SUMMARY_IMAGE, kwargs={"columns": [COLUMN]}),
            "bare": lambda: run_partial(client, collaboration_id, "summary",
                                        image=SUMMARY_IMAGE, kwargs={"columns": [COLUMN]},
                                        artifacts=False),
            "plain": lambda: federated.run_partial(client, request),
        }
        async with credentials.get_async_client() as client:
            await client.login()
            for index in range(repeat):
                for name in _rotated(list(modes), index):
                    seconds, _, edges = await _timed(modes[name])
                    times[name].append(seconds)
                    times[f"{name}@"].append(edges or 0.0)
        return times

    @task(name="sleeper", cache_policy=NO_CACHE, persist_result=False)
    async def sleeper(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    @flow(name="overhead-fan-out-50", persist_result=False)
    async def fan_out(repeat: int) -> dict[str, list[float]]:
        times: dict[str, list[float]] = {"prefect": [], "plain": []}
        for _ in range(repeat):
            times["prefect"].append((await _timed(lambda: asyncio.gather(
                *[sleeper(SLEEP) for _ in range(FAN_OUT)])))[0])
            times["plain"].append((await _timed(lambda: asyncio.gather(
                *[asyncio.sleep(SLEEP) for _ in range(FAN_OUT)])))[0])
        return times

    return {"plain_mean": plain_mean, "flow_mean": flow_mean, "empty_flow": empty_flow,
            "adapter_vs_plain": adapter_vs_plain, "fan_out": fan_out}


def _rotated(items: list[str], index: int) -> list[str]:
    shift = index % len(items)
    return items[shift:] + items[:shift]


Row = tuple[str, ...]


async def whole_calls(parts: dict[str, Any], organizations: list[int], repeat: int,
                      prefect_mode: PrefectModes) -> tuple[list[Row], list[Row], list[str]]:
    """Section 1 for one organization count: (mode rows, overhead rows, verdict lines)."""
    modes: dict[str, tuple[str, bool]] = {
        "plain client": ("plain_mean", False),
        "flow (Prefect defaults)": ("flow_mean", False),
        "flow (tuned settings)": ("flow_mean", True),
        "empty flow (Prefect defaults)": ("empty_flow", False),
        "empty flow (tuned settings)": ("empty_flow", True),
    }
    times: dict[str, list[float]] = {name: [] for name in modes}
    edges: dict[str, list[float]] = {name: [] for name in modes}
    values: set[float] = set()
    for index in range(repeat):
        for name in _rotated(list(modes), index):
            function, tuned = modes[name]
            async with prefect_mode(tuned):
                seconds, value, edge = await _timed(
                    lambda f=function: parts[f](organizations))
            times[name].append(seconds)
            if edge is not None:
                edges[name].append(edge)
            if function != "empty_flow":
                values.add(round(value, 9))
    assert len(values) == 1, f"the modes disagree on the mean: {values}"
    label = f"{len(organizations)} org{'s' if len(organizations) > 1 else ''}"
    mode_rows = [(f"{name}, {label}", *_summary(_ms(times[name])),
                  _summary(_ms(edges[name]))[0] if edges[name] else "-") for name in modes]
    overhead_rows: list[Row] = []
    verdicts: list[str] = []
    plain, plain_edges = times["plain client"], edges["plain client"]
    for setting in ("Prefect defaults", "tuned settings"):
        flow_times, empty = times[f"flow ({setting})"], times[f"empty flow ({setting})"]
        added = _ms([f - p for f, p in zip(flow_times, plain, strict=True)])
        added_edges = _ms([f - p for f, p in zip(edges[f"flow ({setting})"], plain_edges,
                                                  strict=True)])
        ours = _ms([f - p - e for f, p, e in zip(flow_times, plain, empty, strict=True)])
        ours_edges = [a - 1000 * e for a, e in zip(added_edges, empty, strict=True)]
        met = statistics.median(added) <= TARGET_MS
        met_edges = statistics.median(added_edges) <= TARGET_MS
        overhead_rows += [
            (f"flow - plain, {label}, {setting}", *_summary(added, signed=True),
             "met" if met else "NOT met"),
            ("  same, outside the node wait (edges)", *_summary(added_edges, signed=True),
             "met" if met_edges else "NOT met"),
            ("  of which Prefect's empty flow", *_summary(_ms(empty)), ""),
            ("  rest = v6flow adapter, whole call", *_summary(ours, signed=True), ""),
            ("  rest = v6flow adapter, edges", *_summary(ours_edges, signed=True), ""),
        ]
        verdicts.append(
            f"target ≤{TARGET_MS:.0f} ms, {label}, {setting}: "
            f"{'met' if met else 'NOT met'} by the whole call (flow adds "
            f"{statistics.median(added):+.0f} ms), {'met' if met_edges else 'NOT met'} "
            f"outside the node wait ({statistics.median(added_edges):+.0f} ms); "
            f"Prefect's empty flow alone: {statistics.median(_ms(empty)):.0f} ms")
    return mode_rows, overhead_rows, verdicts


async def measure(fed: Any, repeat: int) -> str:
    """Run every measurement; the report text."""
    from prefect_v6flow import V6flowServerCredentials

    credentials = V6flowServerCredentials(url=fed.url, username=fed.username,
                                          password=fed.password)
    organizations = list(fed.organization_ids)
    parts = build(credentials, fed.collaboration_id)
    Edges.install(fed.url)
    prefect_mode = PrefectModes(await tuned_settings_block())
    try:
        for tuned in (False, True):  # warm-up: imports, images cached, first runs
            async with prefect_mode(tuned):
                await parts["flow_mean"](organizations)
                await parts["empty_flow"](organizations)
        await parts["plain_mean"](organizations)
        mode_rows: list[Row] = []
        overhead_rows: list[Row] = []
        verdicts: list[str] = []
        for chosen in (organizations[:1], organizations):
            rows, overhead, lines = await whole_calls(parts, chosen, repeat, prefect_mode)
            mode_rows += rows
            overhead_rows += overhead
            verdicts += lines
    finally:
        await prefect_mode.close()

    a1 = await parts["adapter_vs_plain"](repeat)
    a2 = await parts["fan_out"](repeat)
    n = len(organizations)
    inner: list[Row] = [
        (f"run_partial, {n} orgs, in one flow", *_summary(_ms(a1["adapter"]))),
        (f"run_partial, {n} orgs, artifacts=False", *_summary(_ms(a1["bare"]))),
        (f"plain fan-out, {n} orgs", *_summary(_ms(a1["plain"]))),
        ("adapter - plain (paired)", *_summary(_ms(
            [a - p for a, p in zip(a1["adapter"], a1["plain"], strict=True)]), signed=True)),
        ("adapter without artifacts - plain", *_summary(_ms(
            [a - p for a, p in zip(a1["bare"], a1["plain"], strict=True)]), signed=True)),
        ("adapter - plain, edges only", *_summary(_ms(
            [a - p for a, p in zip(a1["adapter@"], a1["plain@"], strict=True)]), signed=True)),
        ("without artifacts - plain, edges only", *_summary(_ms(
            [a - p for a, p in zip(a1["bare@"], a1["plain@"], strict=True)]), signed=True)),
        (f"{FAN_OUT} awaits of {SLEEP:.1f} s as task runs", *_summary(_ms(a2["prefect"]))),
        (f"{FAN_OUT} plain awaits of {SLEEP:.1f} s", *_summary(_ms(a2["plain"]))),
        ("Prefect per task run (paired / 50)", *_summary(_ms(
            [(a - p) / FAN_OUT for a, p in zip(a2["prefect"], a2["plain"], strict=True)]),
            signed=True)),
    ]
    return "\n\n".join([
        "1. Whole call: federated mean through a flow vs the plain client (ms)",
        render(("mode", "median", "p25..p75", "n", "edges"), mode_rows),
        render(("per round (paired)", "median", "p25..p75", "n", f"≤{TARGET_MS:.0f} ms"),
               overhead_rows),
        "2. Inside one flow run (ms)",
        render(("measurement", "median", "p25..p75", "n"), inner),
        "\n".join(verdicts),
        f"(local prefect server, SQLite; {len(organizations)} real nodes; {repeat} rounds, "
        "modes interleaved in rotating order; tuned = default result storage block, no "
        "client CSRF fetch, one process-wide Prefect client)",
    ])


def render(head: Row, rows: Sequence[Row]) -> str:
    """A plain-text table."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(row: Row) -> str:
        cells = [c.ljust(w) if i == 0 else c.rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        return " | ".join(cells).rstrip()

    return "\n".join([line(head), "-+-".join("-" * w for w in widths),
                      *(line(r) for r in rows)])


@contextlib.contextmanager
def _existing_images_federation(directory: Path, say: Callable[[str], None]) -> Iterator[Any]:
    """The demo's federation on the images already in Docker (``--reuse-images``)."""
    from v6flow import images
    from v6flow_flows import demo
    from v6flow_flows.local_federation import local_federation

    with local_federation(directory / "federation", sidecar_image=images.BASE_IMAGE,
                          policy=demo.DEMO_POLICY, say=say) as fed:
        yield fed


def main(argv: list[str] | None = None) -> int:
    """Start everything, measure, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--prefect-url", default=None)
    parser.add_argument("--reuse-images", action="store_true",
                        help="run the summary image as it is in Docker (no rebuild check)")
    options = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="v6flow-overhead-"))

    def say(message: str) -> None:
        print(f"- {message}", file=sys.stderr)

    try:
        with local_prefect_server(directory, options.prefect_url) as url:
            say(f"prefect server {url}")
            federation = (_existing_images_federation(directory, say) if options.reuse_images
                          else demo_federation(directory, say))
            with federation as fed:
                report = asyncio.run(measure(fed, options.repeat))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
