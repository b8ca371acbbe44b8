"""A blob store in S3-compatible object storage, through obstore.

Why obstore (over fsspec/s3fs): its calls are natively async and stream both ways (an async
iterator goes up as a multipart upload, a download comes down as an async stream of chunks),
it ships complete type hints, and it is one wheel without Python dependencies, where s3fs
pulls aiobotocore, whose narrow botocore pin fights boto3 in the same environment. Both are
actively released; obstore is the better fit for a streaming async server.

Memory per upload is bounded by ``part_bytes * concurrency`` (5 MiB times 2 by default): parts
are sent as they fill. A failed upload is aborted by obstore, so nothing is left under the key.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import TYPE_CHECKING, Any

import obstore
from obstore.store import S3Store

from v6flow_server.blobs.store import (
    CHUNK_BYTES,
    BlobMissing,
    BlobStoreError,
    BlobStream,
    check_key,
)

if TYPE_CHECKING:
    from obstore.store import S3Config

#: Multipart part size (S3's minimum is 5 MiB for all parts but the last).
PART_BYTES = 5 * 1024 * 1024
#: Parts in flight at once per upload.
CONCURRENCY = 2


class S3BlobStore:
    """Blobs as objects ``<prefix><uuid>`` of one bucket."""

    kind = "s3"

    def __init__(self, *, bucket: str, prefix: str = "", endpoint: str | None = None,
                 region: str = "us-east-1", access_key_id: str | None = None,
                 secret_access_key: str | None = None, allow_http: bool = False) -> None:
        """Configure the store (no request is sent yet).

        Args:
            bucket: the bucket (it must exist).
            prefix: key prefix inside the bucket.
            endpoint: URL of an S3-compatible service; None: AWS. With an endpoint, requests
                use path-style addressing (``<endpoint>/<bucket>/<key>``), which every
                S3-compatible server accepts.
            region: the bucket's region.
            access_key_id: access key; None: obstore's usual environment lookup.
            secret_access_key: its secret.
            allow_http: allow a plain-http endpoint.
        """
        config: S3Config = {"region": region}
        if endpoint:
            config["endpoint"] = endpoint
            config["virtual_hosted_style_request"] = False
        if access_key_id:
            config["access_key_id"] = access_key_id
        if secret_access_key:
            config["secret_access_key"] = secret_access_key
        self.bucket = bucket
        self._store = S3Store(bucket, prefix=prefix or None, config=config,
                              client_options={"allow_http": allow_http})

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """See :meth:`v6flow_server.blobs.store.BlobStore.put`."""
        check_key(key)
        size = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal size
            async for chunk in chunks:
                size += len(chunk)
                yield chunk

        try:
            await obstore.put_async(self._store, key, counted(), chunk_size=PART_BYTES,
                                    max_concurrency=CONCURRENCY)
        except obstore.exceptions.BaseError as exc:
            raise BlobStoreError(f"cannot write blob {key}: {exc}") from exc
        return size

    async def open(self, key: str) -> BlobStream:
        """See :meth:`v6flow_server.blobs.store.BlobStore.open`."""
        check_key(key)
        try:
            result = await obstore.get_async(self._store, key)
        except FileNotFoundError:
            raise BlobMissing(f"no blob {key}") from None
        except obstore.exceptions.BaseError as exc:
            raise BlobStoreError(f"cannot read blob {key}: {exc}") from exc
        stream: Any = result.stream(min_chunk_size=CHUNK_BYTES)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                async for chunk in stream:
                    yield bytes(chunk)
            except obstore.exceptions.BaseError as exc:
                raise BlobStoreError(f"reading blob {key} failed: {exc}") from exc

        async def close() -> None:
            """Nothing to release: an unread stream is dropped with its response."""

        return BlobStream(int(result.meta["size"]), chunks(), close)

    async def delete(self, key: str) -> None:
        """See :meth:`v6flow_server.blobs.store.BlobStore.delete` (S3 deletes are idempotent)."""
        check_key(key)
        try:
            await obstore.delete_async(self._store, key)
        except FileNotFoundError:
            return
        except obstore.exceptions.BaseError as exc:
            raise BlobStoreError(f"cannot delete blob {key}: {exc}") from exc

    async def exists(self, key: str) -> bool:
        """See :meth:`v6flow_server.blobs.store.BlobStore.exists`."""
        check_key(key)
        try:
            await obstore.head_async(self._store, key)
        except FileNotFoundError:
            return False
        except obstore.exceptions.BaseError as exc:
            raise BlobStoreError(f"cannot look up blob {key}: {exc}") from exc
        return True

    async def aclose(self) -> None:
        """Nothing to release (obstore's client closes with the object)."""
