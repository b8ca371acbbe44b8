"""Exit codes of the ``v6flow`` command: one registry, each code with its help text.

The numbers agree with the node daemon's own registry (``node/v6flow_node/exit_codes.py``), so
``v6flow node start`` and the other commands mean the same thing by the same number; a test
checks that they stay in step. Click's usage errors (unknown option, missing argument) also
exit 2, which fits :attr:`ExitCode.CONFIGURATION`.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of every ``v6flow`` sub-command."""

    OK = 0
    FAILED = 1
    CONFIGURATION = 2
    AUTHENTICATION = 3
    DOCKER = 4
    PROXY = 5
    SERVER_UNREACHABLE = 6


HELP: dict[ExitCode, str] = {
    ExitCode.OK: "Done (or, for a daemon: stopped normally on SIGTERM/SIGINT).",
    ExitCode.FAILED: "The command could not finish its work (an image build failed, the demo "
                     "failed, an import was refused by the database); the message says why.",
    ExitCode.CONFIGURATION: "A configuration file, setting, input file or command-line "
                            "argument is wrong; the message names the file and the field(s).",
    ExitCode.AUTHENTICATION: "The server rejected the credentials (for a node: its api_key).",
    ExitCode.DOCKER: "The Docker engine cannot be reached (is dockerd running?).",
    ExitCode.PROXY: "The node's container proxy could not listen on its unix socket in "
                    "task_dir.",
    ExitCode.SERVER_UNREACHABLE: "A node could not reach its server when it started (refused, "
                                 "unknown host, TLS, no v6flow API at server_url, or an "
                                 "unhealthy server); the message names the cause. Once "
                                 "started, a node retries a lost server instead.",
}
