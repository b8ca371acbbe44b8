"""Central functions of v6flow as Prefect flows (one folder per method)."""
