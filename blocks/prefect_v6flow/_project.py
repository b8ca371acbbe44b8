"""Where the collection's Blocks point people: documentation and logo (one place to change)."""

from __future__ import annotations

#: The project's public home. Change it here when the repository moves.
PROJECT_URL = "https://github.com/v6flow/v6flow"
#: The flow author's guide (Blocks, the ``Federation`` parameter, deployments, events).
DOCUMENTATION_URL = f"{PROJECT_URL}/blob/main/docs/flows.md"
#: The logo the Prefect UI shows in the Blocks catalog (docs/img/v6flow-logo.svg).
LOGO_URL = f"{PROJECT_URL}/raw/main/docs/img/v6flow-logo.svg"
