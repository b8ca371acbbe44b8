"""Talking to the Docker engine: connect, read an image's labels, stream one offline build."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from v6flow.errors import EngineUnavailable, ImageBuildError

if TYPE_CHECKING:
    import docker

Progress = Callable[[str], None]

ENGINE_HELP = (
    "Start the Docker engine (`sudo systemctl start docker`, or "
    "`nohup dockerd >/tmp/dockerd.log 2>&1 &`), or install it with `apt-get install docker.io`; "
    "set DOCKER_HOST if it listens somewhere else."
)


def docker_client() -> docker.DockerClient:
    """Connect to the Docker engine (``DOCKER_HOST`` or the local socket) and ping it.

    Raises:
        EngineUnavailable: the SDK is missing or the engine does not answer.
    """
    try:
        import docker
        import docker.errors
    except ImportError as exc:
        raise EngineUnavailable(
            "the Docker SDK is not installed: pip install 'v6flow[node]'"
        ) from exc
    try:
        client = docker.from_env(timeout=600)  # a quiet pip step must not time out
        client.ping()
    except docker.errors.DockerException as exc:
        raise EngineUnavailable(f"cannot reach the Docker engine ({exc}). {ENGINE_HELP}") from exc
    return client


def image_labels(client: docker.DockerClient, tag: str) -> dict[str, str] | None:
    """Labels of a local image, or None when no image has this tag."""
    import docker.errors

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    return dict(image.labels or {})


def stream_build(client: docker.DockerClient, *, context: Path, tag: str,
                 buildargs: Mapping[str, str], labels: Mapping[str, str],
                 network_mode: str | None, nocache: bool, progress: Progress) -> str:
    """Run one ``docker build``, forwarding its output lines; return the image id."""
    import docker.errors

    lines: list[str] = []
    image_id = ""
    try:
        stream = client.api.build(
            path=str(context), tag=tag, buildargs=dict(buildargs), labels=dict(labels),
            network_mode=network_mode, rm=True, forcerm=True, pull=False, nocache=nocache,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                raise ImageBuildError(
                    f"docker build of {tag} failed: {str(chunk['error']).strip()}",
                    log_tail="\n".join(lines[-25:]),
                )
            text = str(chunk.get("stream", "")).rstrip()
            if text:
                lines.extend(text.splitlines())
                progress(text)
            aux = chunk.get("aux")
            if isinstance(aux, dict) and "ID" in aux:
                image_id = str(aux["ID"])
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"docker build of {tag} failed: {exc}",
                              log_tail="\n".join(lines[-25:])) from exc
    return image_id
