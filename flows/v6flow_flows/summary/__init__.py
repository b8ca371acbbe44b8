"""Federated summary statistics: flow (central), combine (pure merge), partial (node side)."""

from v6flow_flows.summary.combine import combine_summaries, table_rows

SUMMARY_IMAGE = "v6flow/summary:0.1.0"

__all__ = ["SUMMARY_IMAGE", "combine_summaries", "table_rows"]
