"""Errors of the node daemon.

    V6FlowError (v6flow.errors)
    └── NodeError                 something the node itself could not do
        ├── ProxyError            the container proxy could not start
        ├── ImageUnavailable      the algorithm image can be neither pulled nor found locally
        ├── ContainerStartError   Docker refused to set up or start a container/sidecar
        └── ContainerLost         a running container disappeared or cannot be watched

HTTP failures towards the server are the client errors of :mod:`v6flow.errors`.
"""

from __future__ import annotations

from v6flow.errors import V6FlowError


class NodeError(V6FlowError):
    """Base of the node's own errors."""


class ProxyError(NodeError):
    """The container proxy could not be started."""


class ImageUnavailable(NodeError):
    """The image can be neither pulled nor used from the local engine."""

    def __init__(self, image: str, reason: str) -> None:
        super().__init__(f"image {image!r} is not available: {reason}")
        self.image = image
        self.reason = reason


class ContainerStartError(NodeError):
    """Docker could not create or start a container (or its network sidecar)."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"could not start {what}: {reason}")
        self.what = what
        self.reason = reason


class ContainerLost(NodeError):
    """A container the node was watching disappeared (removed by someone, engine gone)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"lost track of container {name}: {reason}")
        self.name = name
        self.reason = reason
