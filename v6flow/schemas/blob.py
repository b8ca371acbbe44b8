"""Blobs: large inputs and results kept apart from the JSON (``/blobstream``).

A blob is uploaded as a raw byte stream (``POST /blobstream``, answered :class:`BlobCreatedOut`)
and then named by its UUID where the payload would have been: a task's
``organizations[].input`` or a run's ``result``; the run then says ``blob_storage_used``. Its
bytes are the same text or ciphertext the inline field would carry, without the outer base64
of an encrypted message (vantage6 4.x: ``base64(EK)$base64(IV)$`` then raw ciphertext; an
unencrypted payload is base64 text either way).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

_BLOB_REF = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_blob_ref(value: str | None) -> bool:
    """Whether an input or result field names a blob (a UUID) instead of carrying the payload.

    An inline payload is base64 or ``key$iv$message`` text, which has no ``-``, so a UUID is
    never mistaken for one.
    """
    return value is not None and _BLOB_REF.fullmatch(value) is not None


class BlobStoreStatusOut(BaseModel):
    """``GET /blobstream/status``: whether uploads are possible, and from what size to use them.

    vantage6 4.x clients read only ``blob_store_enabled`` (and then put every input and
    result in the store); v6flow clients and nodes send payloads larger than
    ``threshold_bytes`` there and smaller ones inline.
    """

    blob_store_enabled: bool
    threshold_bytes: int | None = Field(
        default=None, description="Payloads larger than this go to the store (None: no store).")
    max_blob_bytes: int | None = Field(
        default=None, description="The largest upload the server accepts (None: no store).")


class BlobCreatedOut(BaseModel):
    """``POST /blobstream``: the UUID that names the stored upload."""

    uuid: str
