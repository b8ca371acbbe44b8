"""Federated contingency table: flow (central), combine (pure merge), partial (node side)."""

from v6flow_flows.crosstab.combine import chi_square, combine_tables, table_rows

CROSSTAB_IMAGE = "v6flow/crosstab:0.1.0"

__all__ = ["CROSSTAB_IMAGE", "chi_square", "combine_tables", "table_rows"]
