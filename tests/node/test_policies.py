"""Image allow-list matching (CONTRACT §4.5)."""

from __future__ import annotations

import pytest

from v6flow_node.policies import image_allowed, strip_tag


@pytest.mark.parametrize(("image", "allowed", "expected"), [
    ("v6flow-test/basic:latest", [".*"], True),
    ("v6flow-test/basic:latest", ["^v6flow/.*", "^v6flow-test/.*"], True),
    ("other/forbidden:latest", ["^v6flow/.*", "^v6flow-test/.*"], False),
    ("harbor.example/x/avg:1.0", ["harbor.example/x/avg"], True),
    ("harbor.example/x/avg:1.0", ["harbor.example/x/avg:1.0"], True),
    ("harbor.example/x/avg:2.0", ["harbor.example/x/avg:1.0"], False),
    ("harbor.example/x/avg", ["harbor.example/x/avg:latest"], True),
    ("localhost:5000/avg@sha256:abc", ["localhost:5000/avg"], True),
    ("v6flow/x", [], False),
    ("v6flow/x", ["[unclosed"], False),
])
def test_image_allowed(image: str, allowed: list[str], expected: bool) -> None:
    """Exact names, names without tag and regexes allow; anything else refuses."""
    decision = image_allowed(image, allowed)
    assert decision.allowed is expected
    if not expected:
        assert image in decision.reason and "allowed_algorithms" in decision.reason


def test_strip_tag_keeps_registry_port() -> None:
    """A registry port is not mistaken for a tag."""
    assert strip_tag("localhost:5000/avg") == "localhost:5000/avg"
    assert strip_tag("localhost:5000/avg:1") == "localhost:5000/avg"
