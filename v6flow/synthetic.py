"""Synthetic patient tables for demos, tests and benchmarks (no real data ever ships).

Each organization gets a CSV of a different size and a slightly different case mix, with
numeric columns (some values missing), categorical columns and outcome columns that the
federated methods use (binary outcome for logistic regression, time/event for survival).
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Sequence
from pathlib import Path

#: Columns written by :func:`write_patient_csv`, in order.
COLUMNS = ("age", "bmi", "sbp", "sex", "smoker", "treated", "outcome", "time", "event")

DEFAULT_SIZES = (120, 80, 50)


def _row(rng: random.Random, shift: float) -> dict[str, object]:
    age = round(rng.gauss(55 + 5 * shift, 12), 1)
    bmi = round(rng.gauss(26 + shift, 4), 2)
    sbp = round(rng.gauss(130 + 4 * shift, 15), 1)
    sex = rng.choice(("F", "M"))
    smoker = rng.choices(("never", "former", "current"), weights=(5, 3, 2 + shift))[0]
    treated = int(rng.random() < 0.5)
    logit = -6.0 + 0.06 * age + 0.08 * bmi - 0.8 * treated + (0.5 if smoker == "current" else 0)
    outcome = int(rng.random() < 1 / (1 + math.exp(-logit)))
    hazard = 0.02 * math.exp(0.03 * (age - 55) - 0.5 * treated)
    time = round(min(rng.expovariate(hazard), 60.0), 2)
    event = int(time < 60.0 and rng.random() < 0.85)
    return {
        "age": age if rng.random() > 0.05 else "",
        "bmi": bmi if rng.random() > 0.08 else "",
        "sbp": sbp,
        "sex": sex,
        "smoker": smoker,
        "treated": treated,
        "outcome": outcome,
        "time": max(time, 0.1),
        "event": event,
    }


def write_patient_csv(path: Path, n_rows: int, *, seed: int, shift: float = 0.0) -> Path:
    """Write ``n_rows`` synthetic patients to ``path`` (CSV with a header) and return it."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not cryptography
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for _ in range(n_rows):
            writer.writerow(_row(rng, shift))
    return path


def write_federation_csvs(directory: Path, sizes: Sequence[int] = DEFAULT_SIZES,
                          *, seed: int = 7) -> list[Path]:
    """Write one CSV per organization (``org<i>.csv``) into ``directory``; sizes differ."""
    return [
        write_patient_csv(directory / f"org{i}.csv", n, seed=seed + i, shift=float(i))
        for i, n in enumerate(sizes)
    ]
