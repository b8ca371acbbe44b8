"""Opt-in caching of one organization's partial result across flow runs.

The key is what determines the answer: server, collaboration, organization, image name
plus ``cache_key_extra`` (pass the image digest or a data version there: the image name
alone does not change when the image is rebuilt), method, args, kwargs and databases.
Never the client, the tracker or the task description (which names the flow run).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.utilities.hashing import hash_objects

#: How long a cached partial result is reused when ``cache=True``.
DEFAULT_CACHE_EXPIRATION = timedelta(days=1)


@dataclass
class PartialCachePolicy(CachePolicy):
    """Cache key of ``run_on_organization`` (see the module docstring)."""

    cache_key_extra: str | None = None

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any],
                    flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        """A hash of the fields that determine the organization's answer."""
        request = inputs["request"]
        client = inputs.get("client")
        payload = {
            "server": str(getattr(client, "base_url", "")),
            "collaboration_id": request.collaboration_id,
            "organization_id": int(inputs["organization_id"]),
            "image": request.image, "extra": self.cache_key_extra,
            "method": request.method, "args": list(request.args),
            "kwargs": request.kwargs, "databases": list(request.databases),
        }
        return hash_objects(json.dumps(payload, sort_keys=True, default=str))


def cache_options(cache: bool | timedelta, cache_key_extra: str | None) -> dict[str, Any]:
    """``Task.with_options`` keywords for ``run_partial(cache=...)`` (empty when off)."""
    if cache is False:
        return {}
    expiration = cache if isinstance(cache, timedelta) else DEFAULT_CACHE_EXPIRATION
    return {"cache_policy": PartialCachePolicy(cache_key_extra=cache_key_extra),
            "cache_expiration": expiration, "persist_result": True,
            "result_serializer": "json"}
