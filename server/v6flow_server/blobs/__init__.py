"""Large inputs and results as blobs: the store seam, its two backends, and the janitor.

- :mod:`v6flow_server.blobs.store`: the :class:`BlobStore` Protocol (streamed put/open/delete);
- :mod:`v6flow_server.blobs.local`: a folder of the server (the default backend once enabled);
- :mod:`v6flow_server.blobs.s3`: S3-compatible object storage through obstore (scale-out);
- :mod:`v6flow_server.blobs.janitor`: deletes released and expired blobs, after commit and on a
  timer.

Which blob a caller may upload, reference or read is decided in
:mod:`v6flow_server.services.blobs`; the routes are in :mod:`v6flow_server.api.routes.blobstream`.
"""

from __future__ import annotations

from v6flow_server.blobs.store import BlobMissing, BlobStore, BlobStoreError, BlobStream, check_key
from v6flow_server.settings import ServerSettings


def open_blob_store(settings: ServerSettings) -> BlobStore | None:
    """The store ``settings.blobs`` configure, or None (``backend: none``).

    Raises:
        BlobStoreError: the local folder cannot be created.
    """
    blobs = settings.blobs
    if blobs.backend == "local":
        from v6flow_server.blobs.local import LocalBlobStore

        return LocalBlobStore(settings.blob_dir())
    if blobs.backend == "s3":
        from v6flow_server.blobs.s3 import S3BlobStore

        return S3BlobStore(
            bucket=blobs.s3_bucket or "", prefix=blobs.s3_prefix, endpoint=blobs.s3_endpoint,
            region=blobs.s3_region,
            access_key_id=(blobs.s3_access_key_id.get_secret_value()
                           if blobs.s3_access_key_id else None),
            secret_access_key=(blobs.s3_secret_access_key.get_secret_value()
                               if blobs.s3_secret_access_key else None),
            allow_http=blobs.s3_allow_http)
    return None


__all__ = ["BlobMissing", "BlobStore", "BlobStoreError", "BlobStream", "check_key",
           "open_blob_store"]
