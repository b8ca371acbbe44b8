"""The summary statistics central function written as in vantage6 4.x: ``main(client, ...)``.

It does what the ``summary_statistics`` flow does without Prefect: one one-organization
subtask of ``summary`` per organization of the collaboration (same image), wait for each
(``wait_for_results`` polls), and the same combination. The partials come from the summary
package, so subtasks run exactly what the flow's subtasks run.
"""

from __future__ import annotations

from typing import Any

from v6flow_summary import histogram, summary  # type: ignore[import-not-found]  # the image's

from v6flow.algorithm import AlgorithmClient, algorithm_client
from v6flow_flows.summary.combine import combine_summaries

__all__ = ["central_summary", "histogram", "summary"]


@algorithm_client
def central_summary(client: AlgorithmClient, columns: list[str] | None = None) -> dict[str, Any]:
    """Federated summary statistics (no quantiles), v4 style."""
    organizations = [int(org["id"]) for org in client.organization.list()]
    kwargs = {} if columns is None else {"columns": columns}
    tasks = {org: client.task.create({"method": "summary", "kwargs": kwargs},
                                     organizations=[org], name=f"summary@{org}")
             for org in organizations}
    partials = {org: client.wait_for_results(task["id"])[0] for org, task in tasks.items()}
    table = combine_summaries(partials)
    table["quantiles"] = {}
    return table
