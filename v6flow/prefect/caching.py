"""Opt-in caching of one organization's partial result across flow runs.

The key is what determines the answer: server, collaboration, organization, the image's
repository and **digest**, ``cache_key_extra`` (e.g. a data version), method, args, kwargs
and databases. Never the client, the tracker or the task description (which names the flow
run). ``run_partial`` resolves the digest once per call (:func:`resolve_image_digest`):

- a pinned reference ``name@sha256:<hex>`` uses that digest (no Docker call);
- otherwise the local Docker engine is asked (Docker SDK, ``docker.from_env()``): the
  image's registry digest (``RepoDigests``) for this repository when it has one, else its
  image id (the digest of its configuration, which every rebuild changes). The local image
  stands for the image the nodes run: pin ``@sha256:`` when nodes pull from a registry and
  the flow's machine has no copy.

When the digest cannot be determined (no Docker SDK, engine unreachable, image not present
locally) the name alone is **not** trusted, since a rebuilt image keeps its name:

- without ``cache_key_extra`` caching is skipped for that call (a warning says why), the
  organizations run as if ``cache=False``;
- with ``cache_key_extra`` the key uses the image name plus that string (a warning says the
  caller's string now stands in for the digest; pass the digest or an image version there).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.utilities.hashing import hash_objects

from v6flow.prefect.logging import run_logger

#: How long a cached partial result is reused when ``cache=True``.
DEFAULT_CACHE_EXPIRATION = timedelta(days=1)
#: Seconds the Docker engine gets to answer the digest lookup.
DOCKER_TIMEOUT = 10

_PINNED = re.compile(r"@(sha256:[0-9a-f]{64})$")
_log = structlog.get_logger("v6flow.prefect")


def repository(image: str) -> str:
    """The reference without digest and tag: ``host:5000/a/b:1@sha256:..`` → ``host:5000/a/b``."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def pinned_digest(image: str) -> str | None:
    """The digest of a pinned reference ``name@sha256:<hex>``, else None."""
    match = _PINNED.search(image.strip().lower())
    return match.group(1) if match else None


def local_image_digest(image: str) -> str | None:
    """The digest of ``image`` in the local Docker engine (blocking), or None.

    The registry digest of this repository (``RepoDigests``) when the image has one, else
    the image id. None when the SDK is missing, the engine does not answer or it has no
    such image; the reason is logged at debug level.
    """
    try:
        import docker
        import docker.errors
    except ImportError:
        _log.debug("no Docker SDK: cannot resolve the image digest", image=image)
        return None
    try:
        client = docker.from_env(timeout=DOCKER_TIMEOUT)
    except docker.errors.DockerException as exc:
        _log.debug("no Docker engine: cannot resolve the image digest", error=str(exc))
        return None
    try:
        attrs: dict[str, Any] = client.images.get(image).attrs
    except (docker.errors.DockerException, OSError) as exc:
        _log.debug("cannot resolve the image digest", image=image, error=str(exc))
        return None
    finally:
        client.close()
    repo = repository(image)
    for reference in attrs.get("RepoDigests") or []:
        name, _, digest = str(reference).partition("@")
        if name == repo and digest.startswith("sha256:"):
            return digest
    image_id = str(attrs.get("Id") or "")
    return image_id if image_id.startswith("sha256:") else None


def resolve_image_digest(image: str) -> str | None:
    """The digest the cache key uses for ``image`` (blocking; see the module docstring)."""
    return pinned_digest(image) or local_image_digest(image)


@dataclass
class PartialCachePolicy(CachePolicy):
    """Cache key of ``run_on_organization`` (see the module docstring).

    ``image_digest`` None means the caller accepted the image name plus
    ``cache_key_extra`` as the key (see :func:`cache_options`).
    """

    cache_key_extra: str | None = None
    image_digest: str | None = None

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any],
                    flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        """A hash of the fields that determine the organization's answer."""
        request = inputs["request"]
        client = inputs.get("client")
        image = (repository(request.image) if self.image_digest is not None
                 else request.image)
        payload = {
            "server": str(getattr(client, "base_url", "")),
            "collaboration_id": request.collaboration_id,
            "organization_id": int(inputs["organization_id"]),
            "image": image, "digest": self.image_digest, "extra": self.cache_key_extra,
            "method": request.method, "args": list(request.args),
            "kwargs": request.kwargs, "databases": list(request.databases),
        }
        return hash_objects(json.dumps(payload, sort_keys=True, default=str))


def cache_options(cache: bool | timedelta, cache_key_extra: str | None, *,
                  image: str = "", image_digest: str | None = None) -> dict[str, Any]:
    """``Task.with_options`` keywords for ``run_partial(cache=...)`` (empty when off).

    Args:
        cache: False (off), True (a day) or how long a result is reused.
        cache_key_extra: part of the key (e.g. a data version).
        image: the image reference (for the warnings).
        image_digest: the resolved digest; None when it could not be determined: then
            caching is skipped unless ``cache_key_extra`` is given (see the module docstring).
    """
    if cache is False:
        return {}
    if image_digest is None:
        if cache_key_extra is None:
            run_logger().warning(
                "cache: the digest of image %s is unknown (not pinned as name@sha256:..., "
                "not in a reachable local Docker engine): caching is skipped for this call; "
                "pin the digest or pass cache_key_extra", image)
            return {}
        run_logger().warning(
            "cache: the digest of image %s is unknown: results are cached under the image "
            "name and cache_key_extra=%r (let it name the image version)", image,
            cache_key_extra)
    expiration = cache if isinstance(cache, timedelta) else DEFAULT_CACHE_EXPIRATION
    return {"cache_policy": PartialCachePolicy(cache_key_extra=cache_key_extra,
                                               image_digest=image_digest),
            "cache_expiration": expiration, "persist_result": True,
            "result_serializer": "json"}
