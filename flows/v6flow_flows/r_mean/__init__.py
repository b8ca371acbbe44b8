"""Federated mean computed by an R partial and a Python partial side by side.

``r_partial/`` is an algorithm written in R that speaks the container contract itself
(docs/cross-language.md); ``partial/`` is its Python twin. The flow sends the same task input
to both, each to its own organizations, and pools the answers (:mod:`.combine`).
"""

from v6flow_flows.r_mean.combine import combine_means

R_MEAN_IMAGE = "v6flow/mean-r:0.1.0"
PYTHON_MEAN_IMAGE = "v6flow/mean-py:0.1.0"
METHOD = "sum_count"

__all__ = ["METHOD", "PYTHON_MEAN_IMAGE", "R_MEAN_IMAGE", "combine_means"]
