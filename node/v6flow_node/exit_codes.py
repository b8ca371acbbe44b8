"""Exit codes of ``v6flow node start``: a registry, each code with its help text."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of the node daemon."""

    OK = 0
    CONFIGURATION = 2
    AUTHENTICATION = 3
    DOCKER = 4
    PROXY = 5


HELP: dict[ExitCode, str] = {
    ExitCode.OK: "The node stopped normally (SIGTERM/SIGINT) and cleaned up its containers.",
    ExitCode.CONFIGURATION: "The node.yaml file is missing or a field in it is wrong.",
    ExitCode.AUTHENTICATION: "The server rejected the node's api_key.",
    ExitCode.DOCKER: "The Docker engine cannot be reached (is dockerd running?).",
    ExitCode.PROXY: "The container proxy could not listen on its unix socket in task_dir.",
}
