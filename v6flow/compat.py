"""What v6flow is compatible with: the vantage6 release whose REST API and wire contract it speaks.

Light on purpose (no imports): ``v6flow --version`` reads it without loading the server.
"""

from __future__ import annotations

#: The vantage6 version whose API, client and algorithm-tools contract v6flow implements.
VANTAGE6_VERSION = "4.15.2"
