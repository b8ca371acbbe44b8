"""Functions with large inputs and results (image ``v6flow-test/node-bulky:latest``)."""

from __future__ import annotations

import hashlib
from typing import Any

from v6flow.algorithm import AlgorithmClient, algorithm_client


def text(size: int, seed: str = "v6flow") -> str:
    """``size`` characters of printable text that depend on ``seed`` (cheap to make)."""
    block = hashlib.sha512(seed.encode()).hexdigest() * 128  # 16 KiB
    return (block * (int(size) // len(block) + 1))[: int(size)]


def sized(size: int, seed: str = "v6flow") -> str:
    """Return :func:`text` of ``size`` characters."""
    return text(size, seed)


def measure(value: str) -> dict[str, Any]:
    """Length and SHA-256 of a (large) text input."""
    return {"length": len(value), "sha256": hashlib.sha256(value.encode()).hexdigest()}


@algorithm_client
def relay(client: AlgorithmClient, size: int, organizations: list[int]) -> dict[str, Any]:
    """Send a large input to a subtask that echoes its measure and a large text back.

    The subtask's input and results both exceed the blob threshold, so they travel through
    the node proxy and the blob store.
    """
    payload = text(size, "input")
    task = client.task.create({"method": "echo_sized", "kwargs": {"value": payload}},
                              organizations=organizations, name="relay-sub")
    results = client.wait_for_results(task["id"], timeout=300)
    return {"subtask_id": task["id"],
            "inputs": [r["input"] for r in results],
            "outputs": [measure(r["output"]) for r in results]}


def echo_sized(value: str) -> dict[str, Any]:
    """The measure of the input, and the input itself back (a result as large as it)."""
    return {"input": measure(value), "output": value}
