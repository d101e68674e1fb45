"""Content-addressed blobs (code, logs, plots, rejected messages) in the JetStream object store.

Events carry only the digest (`sha256:<hex>`); the bytes live here, stored once however often put.
"""

from __future__ import annotations

import hashlib

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.object_store import ObjectStore

from shared.secrets import redact_bytes

__all__ = ["BLOB_BUCKET", "BlobMissing", "BlobStore", "digest_of"]

BLOB_BUCKET = "alphalab-blobs"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class BlobMissing(LookupError):
    """A digest the store does not hold (never stored, or stored in another lab's store)."""


class BlobStore:
    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self._store: ObjectStore | None = None

    async def _bucket(self) -> ObjectStore:
        if self._store is None:
            try:
                self._store = await self._js.object_store(BLOB_BUCKET)
            except NotFoundError:
                self._store = await self._js.create_object_store(BLOB_BUCKET)
        return self._store

    async def put(self, data: bytes) -> str:
        """Store `data` (unless already there) and return its digest; any API key value in it is
        replaced first (see shared.secrets), so the digest is of what is stored."""
        data = redact_bytes(data)
        digest = digest_of(data)
        store = await self._bucket()
        try:
            await store.get_info(_name(digest))
        except NotFoundError:
            await store.put(_name(digest), data)
        return digest

    async def get(self, digest: str) -> bytes:
        store = await self._bucket()
        try:
            result = await store.get(_name(digest))
        except NotFoundError:
            raise BlobMissing(f"{digest} is not in the blob store") from None
        return bytes(result.data or b"")


def _name(digest: str) -> str:
    return digest.replace(":", "-")
