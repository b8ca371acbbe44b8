"""What Prefect adds to a federated call: a table of medians, against a real local Prefect server.

Setup: a local ``prefect server start`` (not the ephemeral one; started here, or reused with
``--prefect-url``) and a federation like ``v6flow demo`` (v6flow server + 3 real node
processes on Docker, the ``v6flow/summary`` image). The partial is ``summary`` of one
column (``age``), i.e. a federated mean: trivial work on the node, so the numbers are
dominated by orchestration (server round trips, container start on the nodes).

Method (all times wall clock, ``time.perf_counter``; medians; modes are interleaved
run by run so drift of the shared machine hits both sides alike):

(a) Prefect's own overhead per organization task run.
  a1. Adapter vs plain client on the real 3-node federation: inside ONE flow run,
      alternately call ``v6flow.prefect.run_partial`` (one Prefect task run per
      organization) and ``v6flow.client.federated.run_partial`` (same requests, no task
      runs), ``--repeat`` times each. Both use the same logged-in client, so the
      difference is the task-run machinery only; divided by 3 organizations it is the
      overhead per organization task run. A third interleaved mode passes
      ``artifacts=False`` (no progress/table artifacts) to separate their cost. Node-side
      noise (Docker, a loaded machine) is of the same order; read it together with a2.
  a2. Task-run overhead at fan-out 50 without nodes: inside one flow run, 50 concurrent
      awaitables of known duration (``asyncio.sleep(0.2)``) gathered as 50 Prefect task
      runs vs the same 50 awaitables gathered plainly. (total_prefect - total_plain)/50
      is the amortised cost per task run (Prefect submits task runs one after another).
      Simulating 50 real organizations (50 node processes) is too heavy for 2 cores;
      this isolates exactly the part that grows with the number of organizations.
(b) Whole call: federated mean over 1 and over 3 organizations through a flow
    (``await flow(...)``: flow run creation, states, task runs, the same client work)
    vs through the plain client (``federated.run_partial``), each including the login.
    Reported: medians of ``--repeat`` runs each, their difference, and the flow engine's
    own share (flow call time - time inside the flow body; low-noise). Target: the flow
    adds ≤ 150 ms.

Usage: ``python benchmarks/prefect_overhead.py [--repeat 7] [--prefect-url URL]``
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ui_screenshot import demo_federation, local_prefect_server

FAN_OUT = 50
SLEEP = 0.2
COLUMN = "age"
TARGET_MS = 150.0


def _median_ms(values: Sequence[float]) -> float:
    return 1000 * statistics.median(values)


async def _timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


def build(credentials: Any, collaboration_id: int) -> dict[str, Any]:
    """The flows and plain functions under test (Prefect imported only after setup)."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    from flows.summary import SUMMARY_IMAGE
    from flows.summary.combine import combine_summaries
    from v6flow.client import federated
    from v6flow.client.federated import PartialRequest
    from v6flow.prefect import run_partial

    request = PartialRequest(collaboration_id=collaboration_id, image=SUMMARY_IMAGE,
                             method="summary", kwargs={"columns": [COLUMN]})

    def mean(partials: dict[int, Any]) -> float:
        return float(combine_summaries(partials)["numeric"][COLUMN]["mean"])

    async def plain_mean(organizations: list[int]) -> float:
        async with credentials.get_async_client() as client:
            return mean(await federated.run_partial(client, request, organizations))

    @flow(name="overhead-federated-mean", persist_result=False, validate_parameters=False)
    async def flow_mean(organizations: list[int]) -> tuple[float, float]:
        started = time.perf_counter()
        partials = await run_partial(credentials, collaboration_id, "summary",
                                     image=SUMMARY_IMAGE, organizations=organizations,
                                     kwargs={"columns": [COLUMN]})
        return mean(partials), time.perf_counter() - started

    @flow(name="overhead-adapter-vs-plain", persist_result=False)
    async def adapter_vs_plain(repeat: int) -> dict[str, list[float]]:
        times: dict[str, list[float]] = {"adapter": [], "bare": [], "plain": []}
        async with credentials.get_async_client() as client:
            await client.login()
            for _ in range(repeat):
                times["adapter"].append(await _timed(lambda: run_partial(
                    client, collaboration_id, "summary", image=SUMMARY_IMAGE,
                    kwargs={"columns": [COLUMN]})))
                times["bare"].append(await _timed(lambda: run_partial(
                    client, collaboration_id, "summary", image=SUMMARY_IMAGE,
                    kwargs={"columns": [COLUMN]}, artifacts=False)))
                times["plain"].append(await _timed(
                    lambda: federated.run_partial(client, request)))
        return times

    @task(name="sleeper", cache_policy=NO_CACHE, persist_result=False)
    async def sleeper(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    @flow(name="overhead-fan-out-50", persist_result=False)
    async def fan_out(repeat: int) -> dict[str, list[float]]:
        times: dict[str, list[float]] = {"prefect": [], "plain": []}
        for _ in range(repeat):
            times["prefect"].append(await _timed(lambda: asyncio.gather(
                *[sleeper(SLEEP) for _ in range(FAN_OUT)])))
            times["plain"].append(await _timed(lambda: asyncio.gather(
                *[asyncio.sleep(SLEEP) for _ in range(FAN_OUT)])))
        return times

    return {"plain_mean": plain_mean, "flow_mean": flow_mean,
            "adapter_vs_plain": adapter_vs_plain, "fan_out": fan_out}


async def measure(fed: Any, repeat: int) -> list[tuple[str, str, str, str]]:
    """Run every measurement; rows of (measurement, with Prefect, without, difference)."""
    from blocks import V6flowServerCredentials
    credentials = V6flowServerCredentials(url=fed.url, username=fed.username,
                                          password=fed.password)
    organizations = list(fed.organization_ids)
    parts = build(credentials, fed.collaboration_id)
    await parts["flow_mean"](organizations)  # warm-up: imports, images cached, first run
    await parts["plain_mean"](organizations)
    rows: list[tuple[str, str, str, str]] = []

    a1 = await parts["adapter_vs_plain"](repeat)
    adapter, plain = _median_ms(a1["adapter"]), _median_ms(a1["plain"])
    rows.append(("a1 run_partial, 3 orgs, in one flow", f"{adapter:.0f} ms",
                 f"{plain:.0f} ms", f"{adapter - plain:+.0f} ms "
                 f"({(adapter - plain) / len(organizations):+.0f} ms/org task run)"))
    bare = _median_ms(a1["bare"])
    rows.append(("a1 same, artifacts=False", f"{bare:.0f} ms", f"{plain:.0f} ms",
                 f"{bare - plain:+.0f} ms "
                 f"({(bare - plain) / len(organizations):+.0f} ms/org task run)"))
    a2 = await parts["fan_out"](repeat)
    with_p, without = _median_ms(a2["prefect"]), _median_ms(a2["plain"])
    rows.append((f"a2 {FAN_OUT} concurrent awaits of {SLEEP:.1f} s", f"{with_p:.0f} ms",
                 f"{without:.0f} ms", f"{with_p - without:+.0f} ms "
                 f"({(with_p - without) / FAN_OUT:+.1f} ms/task run)"))

    for chosen in (organizations[:1], organizations):
        flow_calls: list[float] = []
        bodies: list[float] = []
        plains: list[float] = []
        for _ in range(repeat):
            started = time.perf_counter()
            flow_value, body = await parts["flow_mean"](chosen)
            flow_calls.append(time.perf_counter() - started)
            bodies.append(body)
            started = time.perf_counter()
            plain_value = await parts["plain_mean"](chosen)
            plains.append(time.perf_counter() - started)
            assert abs(flow_value - plain_value) < 1e-9, (flow_value, plain_value)
        call, plain_ms = _median_ms(flow_calls), _median_ms(plains)
        engine = _median_ms([c - b for c, b in zip(flow_calls, bodies, strict=True)])
        verdict = "ok" if call - plain_ms <= TARGET_MS else "over target"
        rows.append((f"b  mean over {len(chosen)} org(s): flow vs plain", f"{call:.0f} ms",
                     f"{plain_ms:.0f} ms", f"{call - plain_ms:+.0f} ms "
                     f"(engine {engine:.0f} ms; target ≤{TARGET_MS:.0f}: {verdict})"))
    return rows


def render(rows: list[tuple[str, str, str, str]], repeat: int) -> str:
    """A plain-text table."""
    head = ("measurement", "with Prefect", "without", "Prefect adds")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(head, widths, strict=True)),
             "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.append(f"(medians of {repeat} runs each; local prefect server; 3 real nodes)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Start everything, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--prefect-url", default=None)
    options = parser.parse_args(argv)
    directory = Path(tempfile.mkdtemp(prefix="v6flow-overhead-"))
    def say(message: str) -> None:
        print(f"- {message}", file=sys.stderr)

    try:
        with local_prefect_server(directory, options.prefect_url) as url:
            say(f"prefect server {url}")
            with demo_federation(directory, say) as fed:
                rows = asyncio.run(measure(fed, options.repeat))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(render(rows, options.repeat))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
