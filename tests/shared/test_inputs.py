"""A campaign's adapter and data file as blobs: packed reproducibly, resolved by digest into a cache,
checked against the digest, and the operator's own held-out copies still masked."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from alphalab.scaffold import new_domain
from shared.blobs import BLOB_BUCKET, digest_of
from shared.bus import Bus
from shared.domain import load_domain
from shared.errors import ConfigError
from shared.events import CampaignStarted
from shared.inputs import Inputs, pack_adapter, ship


def _adapter(parent: Path) -> Path:
    adapter = new_domain("clinic", "tabular", parent)
    (adapter / "secret").mkdir()
    (adapter / "secret" / "test.csv").write_text("x,label\n1,a\n")
    manifest = adapter / "domain.toml"
    manifest.write_text(
        manifest.read_text().replace("\n[data]\n", '\nheld_out = ["secret/test.csv"]\n\n[data]\n', 1)
    )
    return adapter


def _started(
    adapter: Path, data: Path | None, adapter_digest: str, data_digest: str | None
) -> CampaignStarted:
    return CampaignStarted(
        domain=str(adapter),
        data=str(data) if data else None,
        objective="o",
        metric="accuracy",
        direction="maximize",
        adapter_digest=adapter_digest,
        data_digest=data_digest,
    )


def test_the_same_folder_packs_to_the_same_bytes_whatever_its_times_and_caches(tmp_path: Path) -> None:
    adapter = _adapter(tmp_path)
    first = pack_adapter(adapter)
    os.utime(adapter / "harness.py", (1, 1))
    (adapter / "__pycache__").mkdir()
    (adapter / "__pycache__" / "harness.cpython-311.pyc").write_bytes(b"\0cache")
    assert pack_adapter(adapter) == first
    (adapter / "harness.py").write_text((adapter / "harness.py").read_text() + "\n# changed\n")
    assert pack_adapter(adapter) != first


async def test_a_service_resolves_the_campaign_from_the_blobs_alone(bus: Bus, tmp_path: Path) -> None:
    adapter = _adapter(tmp_path / "operator")
    data = tmp_path / "operator" / "patients.csv"
    data.write_text("age,label\n1,a\n2,b\n")
    shipped = await ship(bus.blobs, load_domain(str(adapter)), str(data))
    started = _started(adapter, data, shipped.adapter_digest, shipped.data_digest)

    # On the operator's own machine, its copies of the held-out file and the data stay masked too.
    here = await Inputs(bus.blobs, tmp_path / "host-a" / "cache").resolve(started)
    cached = tmp_path / "host-a" / "cache" / "adapters" / shipped.adapter_digest.removeprefix("sha256:")
    assert here.domain.root == cached and Path(here.data or "").read_text() == data.read_text()
    assert {adapter / "secret" / "test.csv", data, cached / "secret" / "test.csv"} <= set(
        here.domain.held_out(here.data)
    )
    assert here.domain.harness_digest() == load_domain(str(adapter)).harness_digest()

    # Elsewhere the operator's paths do not exist: the cache is all there is.
    shutil.rmtree(adapter)
    data.unlink()
    there = await Inputs(bus.blobs, tmp_path / "host-b" / "cache").resolve(started)
    assert (there.domain.root / "harness.py").is_file() and Path(there.data or "").is_file()
    assert adapter / "secret" / "test.csv" not in there.domain.held_out(there.data)


async def test_a_blob_that_is_missing_or_not_what_its_digest_says_is_refused(
    bus: Bus, tmp_path: Path
) -> None:
    adapter = _adapter(tmp_path)
    missing = _started(adapter, None, digest_of(b"never stored"), None)
    with pytest.raises(ConfigError, match="not in the blob store"):
        await Inputs(bus.blobs, tmp_path / "cache").resolve(missing)

    claimed = digest_of(pack_adapter(adapter))
    await bus.blobs.put(b"the bucket exists")
    store = await bus.js.object_store(BLOB_BUCKET)
    await store.put(claimed.replace(":", "-"), b"something else")  # planted under another's digest
    with pytest.raises(ConfigError, match="does not match its digest"):
        await Inputs(bus.blobs, tmp_path / "cache").resolve(_started(adapter, None, claimed, None))
    assert not (tmp_path / "cache" / "adapters").exists() or not any(
        (tmp_path / "cache" / "adapters").iterdir()
    )
