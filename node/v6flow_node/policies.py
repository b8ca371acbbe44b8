"""Which algorithm images this node may run (CONTRACT §4.5), as pure functions."""

from __future__ import annotations

import re
from dataclasses import dataclass

_REGEX_CHARS = re.compile(r"[\^\$\*\+\?\(\)\[\]\{\}\|\\]")


@dataclass(frozen=True)
class PolicyDecision:
    """Outcome of a policy check; ``reason`` explains a refusal for the run log."""

    allowed: bool
    reason: str = ""


def strip_digest(image: str) -> str:
    """Drop an ``@sha256:…`` suffix."""
    return image.split("@", 1)[0]


def strip_tag(image: str) -> str:
    """Drop the ``:tag`` of an image name (a registry ``host:port/`` prefix is kept)."""
    image = strip_digest(image)
    slash = image.rfind("/")
    colon = image.rfind(":")
    return image[:colon] if colon > slash else image


def with_default_tag(image: str) -> str:
    """Add ``:latest`` when the image names no tag (digest kept)."""
    base = strip_digest(image)
    return image if strip_tag(base) != base or "@" in image else f"{image}:latest"


def is_regex(pattern: str) -> bool:
    """Whether an allow-list entry is a regex (it has regex special characters)."""
    return bool(_REGEX_CHARS.search(pattern))


def image_allowed(image: str, allowed: list[str]) -> PolicyDecision:
    """Check ``image`` against ``allowed_algorithms``.

    An entry matches when it equals the image, equals the image without tag (or digest), or
    is a regex that ``re.match``-es the image (as v4). An empty list allows nothing.

    Args:
        image: the task's image, exactly as the server stores it.
        allowed: the node's ``policies.allowed_algorithms``.

    Returns:
        The decision, with a reason naming the allow-list when refused.
    """
    candidates = {image, strip_digest(image), strip_tag(image),
                  with_default_tag(strip_digest(image))}
    for pattern in allowed:
        if pattern in candidates:
            return PolicyDecision(True)
        if is_regex(pattern):
            try:
                if re.match(pattern, image):
                    return PolicyDecision(True)
            except re.error:
                continue
    return PolicyDecision(
        False,
        f"image {image!r} is not allowed by this node's policy "
        f"(policies.allowed_algorithms = {allowed})",
    )
