"""One contract for every BlobStore: the local folder and S3 (against moto's S3 server).

The S3 backend is tested against a real S3-compatible HTTP server on this machine: moto's
server mode (``moto[server]`` from PyPI, ``python -m moto.server`` on 127.0.0.1), driven by
obstore exactly as in production (signed requests, multipart uploads). Each implementation
gets the same test class (:class:`BlobStoreContract`).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import ServerProcess, free_port, start_server
from v6flow_server.blobs import BlobMissing, BlobStore
from v6flow_server.blobs.local import LocalBlobStore
from v6flow_server.blobs.s3 import PART_BYTES, S3BlobStore
from v6flow_server.blobs.store import CHUNK_BYTES

BUCKET = "v6flow-test"
#: Enough to cross several S3 multipart parts and local write batches.
LARGE = 2 * PART_BYTES + 12345


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 with the test bucket; stopped after the module."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                 "-p", str(port)], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.put(f"{url}/{BUCKET}", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def s3_store(url: str, prefix: str) -> S3BlobStore:
    """An S3 store on the moto server (any keys: moto accepts every signature)."""
    return S3BlobStore(bucket=BUCKET, prefix=prefix, endpoint=url, region="us-east-1",
                       access_key_id="test", secret_access_key="test", allow_http=True)


def key() -> str:
    """A fresh blob key."""
    return str(uuid.uuid4())


async def stream(data: bytes, piece: int = 64 * 1024) -> AsyncIterator[bytes]:
    """``data`` in pieces, as an upload arrives."""
    for start in range(0, len(data), piece):
        yield data[start:start + piece]


async def read_all(store: BlobStore, blob: str) -> tuple[int, bytes, int]:
    """``(size, bytes, largest chunk)`` of a stored blob."""
    opened = await store.open(blob)
    parts = [chunk async for chunk in opened]
    return opened.size, b"".join(parts), max((len(p) for p in parts), default=0)


class BlobStoreContract:
    """What every BlobStore does; subclasses provide the ``store`` fixture."""

    async def test_a_stream_comes_back_byte_for_byte(self, store: BlobStore) -> None:
        """put then open: the same size and bytes, read in bounded chunks."""
        data = os.urandom(LARGE)
        blob = key()
        size = await store.put(blob, stream(data))
        got_size, got, largest = await read_all(store, blob)
        assert size == got_size == len(data)
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        assert largest <= 2 * CHUNK_BYTES

    async def test_an_empty_stream_is_an_empty_blob(self, store: BlobStore) -> None:
        """Zero bytes are stored and read back as zero bytes."""
        blob = key()
        assert await store.put(blob, stream(b"")) == 0
        assert await read_all(store, blob) == (0, b"", 0)

    async def test_a_broken_upload_leaves_nothing(self, store: BlobStore) -> None:
        """A stream that fails half-way raises, and nothing is stored under the key."""
        blob = key()

        async def broken() -> AsyncIterator[bytes]:
            yield os.urandom(PART_BYTES + 1)
            raise ConnectionResetError("client went away")

        with pytest.raises(ConnectionResetError):
            await store.put(blob, broken())
        assert not await store.exists(blob)
        with pytest.raises(BlobMissing):
            await store.open(blob)

    async def test_delete_removes_and_is_idempotent(self, store: BlobStore) -> None:
        """A deleted blob is missing; deleting it (or a never stored one) again is fine."""
        blob = key()
        await store.put(blob, stream(b"payload"))
        assert await store.exists(blob)
        await store.delete(blob)
        await store.delete(blob)
        await store.delete(key())
        assert not await store.exists(blob)
        with pytest.raises(BlobMissing):
            await store.open(blob)

    async def test_a_closed_stream_can_be_left_unread(self, store: BlobStore) -> None:
        """Opening and closing without reading releases the blob (and it stays stored)."""
        blob = key()
        await store.put(blob, stream(b"x" * 1000))
        opened = await store.open(blob)
        await opened.aclose()
        assert (await read_all(store, blob))[0] == 1000

    async def test_only_uuid_keys_are_accepted(self, store: BlobStore) -> None:
        """A key that is not a lower-case UUID (a path, say) is refused before any I/O."""
        for bad in ("../../etc/passwd", "A" * 36, key().upper(), ""):
            with pytest.raises(ValueError, match="not a blob key"):
                await store.put(bad, stream(b"x"))
            with pytest.raises(ValueError, match="not a blob key"):
                await store.open(bad)


class TestLocalBlobStore(BlobStoreContract):
    """The contract on a folder."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> BlobStore:
        """A fresh folder store."""
        return LocalBlobStore(tmp_path / "blobs")

    async def test_files_are_private(self, tmp_path: Path) -> None:
        """Folder 0700, blob files 0600: other users of the host read nothing."""
        store = LocalBlobStore(tmp_path / "blobs")
        blob = key()
        await store.put(blob, stream(b"secret"))
        path = tmp_path / "blobs" / blob[:2] / blob
        assert (tmp_path / "blobs").stat().st_mode & 0o777 == 0o700
        assert path.stat().st_mode & 0o777 == 0o600


class TestS3BlobStore(BlobStoreContract):
    """The contract on an S3-compatible server (moto)."""

    @pytest.fixture
    def store(self, moto_url: str) -> BlobStore:
        """A store with a prefix of its own in the test bucket."""
        return s3_store(moto_url, prefix=f"t-{secrets.token_hex(4)}/")

    async def test_a_broken_upload_leaves_no_multipart_upload(self, moto_url: str) -> None:
        """The aborted multipart upload is gone too (it would hold storage until expired)."""
        prefix = f"t-{secrets.token_hex(4)}/"
        store = s3_store(moto_url, prefix)

        async def broken() -> AsyncIterator[bytes]:
            yield os.urandom(PART_BYTES + 1)
            raise ConnectionResetError("client went away")

        with pytest.raises(ConnectionResetError):
            await store.put(key(), broken())
        listing = httpx.get(f"{moto_url}/{BUCKET}?uploads&prefix={prefix}", timeout=5).text
        assert "<Upload>" not in listing


def test_a_server_with_the_s3_backend_streams_blobs(moto_url: str, tmp_path: Path) -> None:
    """``blobs.backend: s3``: a real server stores an upload in the bucket and streams it back."""
    prefix = f"srv-{secrets.token_hex(4)}/"
    proc: ServerProcess = start_server(
        database_url=f"sqlite:///{tmp_path}/server.sqlite",
        root_password=secrets.token_urlsafe(12), log_dir=tmp_path, extra_env={
            "V6FLOW_SERVER_BLOBS__BACKEND": "s3", "V6FLOW_SERVER_BLOBS__S3_BUCKET": BUCKET,
            "V6FLOW_SERVER_BLOBS__S3_PREFIX": prefix,
            "V6FLOW_SERVER_BLOBS__S3_ENDPOINT": moto_url,
            "V6FLOW_SERVER_BLOBS__S3_ACCESS_KEY_ID": "test",
            "V6FLOW_SERVER_BLOBS__S3_SECRET_ACCESS_KEY": "test",
            "V6FLOW_SERVER_BLOBS__S3_ALLOW_HTTP": "true"})
    try:
        from tests.server.conftest import build_world

        world = build_world(proc)
        org = world.org_ids[0]
        node = world.node_token(org)
        task = world.create_task([org])
        run = next(r for r in world.runs(task["id"]) if r["organization"]["id"] == org)
        data = os.urandom(LARGE)
        created = world.call("POST", "/blobstream", node, content=data)
        blob = created.json()["uuid"]
        world.ok("PATCH", f"/run/{run['id']}", node, json={"result": blob})
        listing = httpx.get(f"{moto_url}/{BUCKET}?list-type=2&prefix={prefix}", timeout=5).text
        fetched = world.call("GET", f"/blobstream/{blob}", world.researcher_token)
        assert created.status_code == 201 and f"<Key>{prefix}{blob}</Key>" in listing
        assert fetched.status_code == 200 and fetched.content == data
    finally:
        proc.stop()
