"""Federated Kaplan-Meier survival with the log-rank test: flow, combine, partial."""

from v6flow_flows.survival.combine import combine_survival, kaplan_meier, log_rank, table_rows

SURVIVAL_IMAGE = "v6flow/survival:0.1.0"

__all__ = ["SURVIVAL_IMAGE", "combine_survival", "kaplan_meier", "log_rank", "table_rows"]
