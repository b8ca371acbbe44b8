"""A vantage6 v4 algorithm that knows nothing of v6flow: only vantage6-algorithm-tools 4.15.2.

``central(client, column)`` creates a ``partial`` subtask at every organization of the
collaboration, waits for it and combines the column sums; ``partial(df, column)`` uses
``@data(1)``; ``partial_meta`` also uses ``@metadata``.
"""

from vantage6.algorithm.tools.decorators import (
    RunMetaData,
    algorithm_client,
    data,
    metadata,
)


@algorithm_client
def central(client, column, organizations=None):
    """Fan out ``partial`` and combine: count, sum, mean and the parts."""
    if organizations is None:
        organizations = [org["id"] for org in client.organization.list()]
    task = client.task.create(
        input_={"method": "partial", "kwargs": {"column": column}},
        organizations=organizations,
        name="v6compat partial",
        description="subtask of v6compat central",
    )
    parts = client.wait_for_results(task_id=task.get("id"))
    count = sum(part["count"] for part in parts)
    total = sum(part["sum"] for part in parts)
    return {
        "count": count,
        "sum": total,
        "mean": total / count if count else None,
        "parts": parts,
        "subtask_id": task.get("id"),
    }


@data(1)
def partial(df, column):
    """Count and sum of one column."""
    values = df[column].dropna()
    return {"count": int(values.count()), "sum": float(values.sum())}


@data(1)
@metadata
def partial_meta(meta: RunMetaData, df, column):
    """Like ``partial``, plus the organization id from the token."""
    values = df[column].dropna()
    return {
        "count": int(values.count()),
        "sum": float(values.sum()),
        "organization_id": meta.organization_id,
        "task_id": meta.task_id,
    }


@data(1)
def frame(df):
    """The DataFrame v4's ``@data`` loaded, as JSON (``split`` orient, no index)."""
    import json

    return {"frame": json.loads(df.to_json(orient="split", index=False))}


def database_uri(label):
    """``<LABEL>_DATABASE_URI`` as the node gave it (how v4 algorithms use type ``other``)."""
    import os

    return os.environ[f"{label.upper()}_DATABASE_URI"]
