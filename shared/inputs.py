"""A campaign's inputs, its adapter folder and the user's data file, as content-addressed blobs.

Where a campaign starts, `ship` packs both into the blob store and `campaign-started` carries their
digests. Every service, on whatever host, resolves a campaign through `Inputs`: by digest into its own
cache (each blob's digest checked, unpacked once, atomically), never from the operator's paths, which
may not exist where it runs, or may have changed or gone since. A campaign whose `campaign-started`
has no digests (a log from before, a test's built-in domain) is read from its references, as then.

An adapter travels as a gzipped tar made byte-for-byte reproducible (sorted names, no times, no
owners), so the same folder always gives the same digest.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog

from shared.blobs import BlobMissing, BlobStore
from shared.domain import PACKAGE_PREFIX, Domain, load_domain
from shared.errors import ConfigError

__all__ = ["CampaignInputs", "Inputs", "Resolved", "pack_adapter", "ship"]

MAX_ADAPTER_BYTES = 256 * 1024 * 1024
MAX_DATA_BYTES = 1024 * 1024 * 1024
_SKIPPED = {"__pycache__", ".git", ".ipynb_checkpoints"}
log = structlog.get_logger(__name__)


class CampaignInputs(Protocol):
    """What names a campaign's inputs: `campaign-started`'s payload, or a campaign's view of it."""

    domain: str | None
    data: str | None
    adapter_digest: str | None
    data_digest: str | None


@dataclass(frozen=True, slots=True)
class Resolved:
    domain: Domain
    data: str | None  # the data file's path on this host


@dataclass(frozen=True, slots=True)
class Shipped:
    adapter_digest: str
    data_digest: str | None


def pack_adapter(root: Path) -> bytes:
    """The adapter folder as a reproducible tar.gz: regular files (a link's target, read), no caches."""
    buffer = io.BytesIO()
    total = 0
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in _files(root):
            data = path.read_bytes()
            total += len(data)
            if total > MAX_ADAPTER_BYTES:
                raise ConfigError(f"{root}: the adapter folder holds over {MAX_ADAPTER_BYTES >> 20} MB")
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            info.size, info.mode = len(data), 0o755 if os.access(path, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _files(root: Path) -> list[Path]:
    found: list[Path] = []
    for folder, names, files in os.walk(root, followlinks=False):
        names[:] = sorted(n for n in names if n not in _SKIPPED)
        found += [Path(folder) / f for f in sorted(files) if not f.endswith(".pyc")]
    return sorted((p for p in found if p.is_file()), key=lambda p: p.relative_to(root).as_posix())


async def ship(blobs: BlobStore, domain: Domain, data: str | None) -> Shipped:
    """Store the adapter and the data file as blobs, for `campaign-started` to name by digest."""
    adapter = await asyncio.to_thread(pack_adapter, domain.root)
    data_bytes = await asyncio.to_thread(_read_data, Path(data)) if data else None
    return Shipped(
        adapter_digest=await blobs.put(adapter),
        data_digest=await blobs.put(data_bytes) if data_bytes is not None else None,
    )


def _read_data(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_DATA_BYTES:
            raise ConfigError(f"{path}: over {MAX_DATA_BYTES >> 30} GB, too large to ship with the campaign")
        return path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the data file: {err.strerror}") from None


class Inputs:
    """Resolves campaigns' inputs into `cache` (one per host or container), memoised per process."""

    def __init__(self, blobs: BlobStore, cache: Path) -> None:
        self._blobs = blobs
        self._cache = cache
        self._resolved: dict[tuple[str | None, ...], Resolved | ConfigError] = {}

    async def resolve(self, campaign: CampaignInputs) -> Resolved:
        """The campaign's adapter, loaded, and its data file's local path; ConfigError if either
        cannot be had (a blob missing from the store, or not what its digest says)."""
        key = (campaign.domain, campaign.adapter_digest, campaign.data, campaign.data_digest)
        if key not in self._resolved:
            try:
                self._resolved[key] = Resolved(
                    domain=await self._domain(campaign),
                    data=await self._data(campaign) if campaign.data_digest else campaign.data,
                )
            except ConfigError as err:  # for good: the same blobs, or the same files, next time
                log.error("inputs_unavailable", domain=campaign.domain, error=str(err))
                self._resolved[key] = err
        resolved = self._resolved[key]
        if isinstance(resolved, ConfigError):
            raise resolved
        return resolved

    async def _domain(self, campaign: CampaignInputs) -> Domain:
        if campaign.adapter_digest is None:
            assert campaign.domain is not None
            return load_domain(campaign.domain)
        folder = self._cache / "adapters" / _hex(campaign.adapter_digest)
        if not folder.is_dir():
            archive = await self._fetch(campaign.adapter_digest, "adapter")
            await asyncio.to_thread(_unpack_into, archive, folder)
            log.info("adapter_cached", digest=campaign.adapter_digest, folder=str(folder))
        domain = load_domain(str(folder))
        return dataclasses.replace(domain, also_held_out=_operators_copies(domain, campaign))

    async def _data(self, campaign: CampaignInputs) -> str:
        assert campaign.data_digest is not None
        name = Path(campaign.data or "data").name  # the file's name: loaders go by its suffix
        path = self._cache / "data" / _hex(campaign.data_digest) / name
        if not path.is_file():
            content = await self._fetch(campaign.data_digest, "data file")
            await asyncio.to_thread(_write_atomically, content, path)
            log.info("data_cached", digest=campaign.data_digest, path=str(path))
        return str(path)

    async def _fetch(self, digest: str, what: str) -> bytes:
        try:
            content = await self._blobs.get(digest)
        except BlobMissing:
            raise ConfigError(f"the campaign's {what} {digest} is not in the blob store") from None
        if f"sha256:{hashlib.sha256(content).hexdigest()}" != digest:
            raise ConfigError(f"the campaign's {what} from the blob store does not match its digest {digest}")
        return content


def _operators_copies(domain: Domain, campaign: CampaignInputs) -> tuple[Path, ...]:
    """The held-out files where the operator has them, if this host is the operator's: the cache
    copy is what runs, but candidates must see neither."""
    copies = []
    if campaign.domain and Path(campaign.domain).is_absolute():
        original = Path(campaign.domain)
        entries = [entry for entry in domain.manifest.held_out if not entry.startswith(PACKAGE_PREFIX)]
        copies += [original / entry for entry in entries]
    if campaign.data:
        copies.append(Path(campaign.data))
    return tuple(path for path in copies if path.exists())


def _hex(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256" or len(value) != 64 or not all(c in "0123456789abcdef" for c in value):
        raise ConfigError(f"not a sha256 digest: {digest!r}")
    return value


def _unpack_into(archive: bytes, folder: Path) -> None:
    """Unpack next to `folder`, then rename into place: a reader sees all of it or nothing, and two
    services of one host unpacking at once both end with the same folder."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".unpacking-"))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            tar.extractall(scratch, filter="data")  # no links out, no absolute paths, no devices
        try:
            scratch.rename(folder)
        except OSError:
            if not folder.is_dir():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_atomically(content: bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".writing-", delete=False) as partial:
        partial.write(content)
    os.replace(partial.name, path)
