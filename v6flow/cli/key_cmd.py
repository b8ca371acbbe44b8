"""``v6flow key``: an organization's key pair for encrypted collaborations.

``key generate`` writes a new RSA private key (4096 bits, PEM ``BEGIN RSA PRIVATE KEY``
without passphrase: the format vantage6 v4 reads and writes) with mode 0600, and prints what
to do with it. The public half reaches the server when the node (or a client) first uses the
key. Nothing secret is printed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Annotated

import typer

from v6flow.cli.exit_codes import ExitCode

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)

COMMAND = "v6flow key generate"
DEFAULT_FILE = "private_key.pem"


def _fail(message: str, code: ExitCode) -> typer.Exit:
    typer.echo(f"{COMMAND}: {message}", err=True)
    return typer.Exit(int(code))


def write_private(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write ``data`` to ``path`` readable by its owner only (created 0600, never wider).

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        OSError: the file cannot be written.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    if overwrite:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, data)
    finally:
        os.close(fd)


@app.command("generate")
def generate(
    out: Annotated[Path, typer.Option(
        "--out", "-o", dir_okay=False,
        help=f"Where to write the private key (default: ./{DEFAULT_FILE}).")] = Path(DEFAULT_FILE),
    bits: Annotated[int, typer.Option(min=2048, max=16384,
                                      help="RSA key size in bits.")] = 4096,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Write a new organization key pair for encrypted collaborations (file mode 0600)."""
    from v6flow import crypto

    key = crypto.generate_private_key(bits)
    try:
        write_private(out, crypto.private_key_to_pem(key), overwrite=force)
    except FileExistsError:
        raise _fail(f"{out} exists; choose another --out, or --force to replace it (the old "
                    "key can then no longer decrypt what was encrypted for it)",
                    ExitCode.CONFIGURATION) from None
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc.strerror}", ExitCode.FAILED) from None
    path = out.resolve()
    public = crypto.public_key_to_wire(key)
    fingerprint = hashlib.sha256(public.encode("ascii")).hexdigest()[:16]
    typer.echo(f"""Wrote a {bits}-bit RSA private key to {path} (mode 0600).
Public key fingerprint (sha256 of the API public_key, first 16 hex): {fingerprint}

This is your ORGANIZATION's key: its node(s) and its users share it. Keep it secret, keep a
backup (results encrypted for it are lost with it), and never give it to anyone else.

1. Node (node.yaml): the node uploads the public key when it starts.
     encryption:
       enabled: true
       private_key: {path}
2. v6flow client:
     Client(url, username=..., password=..., private_key="{path}")
   Prefect flows: the V6flow Server Credentials block, field private_key_path (or paste the
   PEM into its secret private_key field).
3. vantage6 4.x UserClient:
     client.setup_encryption("{path}")""")
