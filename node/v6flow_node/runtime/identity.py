"""The unprivileged user algorithm and sidecar containers run as, and what it may read.

A node running as root runs every container as ``nobody`` (uid/gid 65534) and hands the
files a container must write (its run folder, the job's scratch folder, the proxy socket) to
that user, mode ``0700``/``0600``: nothing is made world-writable. A node that runs as an
ordinary user (in the ``docker`` group) cannot give files away; its containers then run as
the node's own uid:gid, which already owns those files (still never uid 0).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

#: The user a root node runs containers as (Debian's ``nobody``/``nogroup``).
UNPRIVILEGED_ID = 65534


def algorithm_user() -> tuple[int, int]:
    """``(uid, gid)`` of algorithm and sidecar containers (see the module docstring)."""
    if os.geteuid() == 0:
        return UNPRIVILEGED_ID, UNPRIVILEGED_ID
    return os.geteuid(), os.getegid()


def docker_user() -> str:
    """The ``user`` argument of ``containers.create``: ``"uid:gid"``."""
    uid, gid = algorithm_user()
    return f"{uid}:{gid}"


def give_to_algorithm(path: Path, mode: int) -> None:
    """Make ``path`` owned by the algorithm user (when the node may) with ``mode``."""
    uid, gid = algorithm_user()
    if os.geteuid() == 0:
        os.chown(path, uid, gid)
    path.chmod(mode)


def unreadable_reason(path: Path) -> str | None:
    """Why the algorithm user cannot read the file ``path`` (None when it can).

    Only the file's own owner, group and mode count: it is bind-mounted, so the folders
    above it on the host are not traversed inside the container.
    """
    uid, gid = algorithm_user()
    info = path.stat()
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid == uid:
        readable = bool(mode & stat.S_IRUSR)
    elif info.st_gid == gid:
        readable = bool(mode & stat.S_IRGRP)
    else:
        readable = bool(mode & stat.S_IROTH)
    if readable:
        return None
    return (f"algorithm containers run as {uid}:{gid} and cannot read it (owner "
            f"{info.st_uid}:{info.st_gid}, mode {mode:04o}); make it readable for them, "
            "e.g. chmod o+r")
