"""A minimal Debian root filesystem made with debootstrap, cached on disk and imported once.

No registry is involved: debootstrap fetches .deb files from a Debian mirror on the host and
``docker import`` turns the directory into an image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from v6flow.errors import ImageBuildError

#: Packages the base image needs on top of ``--variant=minbase``.
ROOTFS_PACKAGES = ("python3", "python3-pip", "python3-venv")
DEFAULT_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"

Progress = Callable[[str], None]

#: Written last into a finished rootfs; a directory without it is incomplete.
_DONE_MARKER = ".v6flow-rootfs-complete"
#: Bulk removable after debootstrap: package archives and apt lists.
_PRUNE = ("var/cache/apt/archives", "var/lib/apt/lists")


def ensure_rootfs(cache_dir: Path, *, suite: str = DEFAULT_SUITE,
                  mirror: str = DEFAULT_MIRROR, progress: Progress | None = None) -> Path:
    """Return a complete debootstrapped rootfs under ``cache_dir``, creating it if needed.

    Args:
        cache_dir: Cache root; the rootfs lives at ``cache_dir/rootfs/<suite>``.
        suite: Debian suite to bootstrap.
        mirror: Debian mirror URL.
        progress: Optional callback for one-line progress messages.

    Returns:
        Path of the rootfs directory.

    Raises:
        ImageBuildError: debootstrap is missing, we are not root, or debootstrap failed.
    """
    say = progress or (lambda _msg: None)
    final = cache_dir / "rootfs" / suite
    if (final / _DONE_MARKER).is_file():
        say(f"reusing Debian {suite} rootfs at {final}")
        return final
    if shutil.which("debootstrap") is None:
        raise ImageBuildError(
            "debootstrap is not installed; install it with `apt-get install debootstrap` "
            "(it builds the Debian root filesystem of the base image without any registry)"
        )
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        raise ImageBuildError("debootstrap needs root: run the base image build as root")
    partial = final.with_name(f"{suite}.partial")
    if partial.exists():
        shutil.rmtree(partial)
    if final.exists():
        shutil.rmtree(final)
    partial.parent.mkdir(parents=True, exist_ok=True)
    say(f"debootstrap {suite} (minbase + {', '.join(ROOTFS_PACKAGES)}) from {mirror}")
    cmd = [
        "debootstrap", "--variant=minbase", f"--include={','.join(ROOTFS_PACKAGES)}",
        suite, str(partial), mirror,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise ImageBuildError(
            f"debootstrap failed with exit code {proc.returncode} (is {mirror} reachable?)",
            log_tail=tail,
        )
    _prune(partial)
    (partial / _DONE_MARKER).write_text(f"{suite} {mirror}\n")
    partial.rename(final)
    return final


def _prune(rootfs: Path) -> None:
    """Delete package archives and apt lists: they are not needed in the image."""
    for rel in _PRUNE:
        folder = rootfs / rel
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.is_file() and entry.name not in {"lock"}:
                entry.unlink()


def import_rootfs(rootfs: Path, tag: str) -> None:
    """``tar -C rootfs -c . | docker import - tag``, streamed without a temporary file.

    Raises:
        ImageBuildError: tar or docker import failed (or the docker CLI is missing).
    """
    if shutil.which("docker") is None:
        raise ImageBuildError("the docker command-line client is needed to import the rootfs")
    tar = subprocess.Popen(
        ["tar", "-C", str(rootfs), "--exclude", f"./{_DONE_MARKER}", "-c", "."],
        stdout=subprocess.PIPE,
    )
    assert tar.stdout is not None
    try:
        imp = subprocess.run(
            ["docker", "import", "--message", "v6flow debootstrap rootfs", "-", tag],
            stdin=tar.stdout, capture_output=True, text=True, check=False,
        )
    finally:
        tar.stdout.close()
        tar_rc = tar.wait()
    if tar_rc != 0 or imp.returncode != 0:
        raise ImageBuildError(
            f"importing {rootfs} as {tag} failed (tar exit {tar_rc}, docker exit {imp.returncode})",
            log_tail=imp.stderr.strip(),
        )
