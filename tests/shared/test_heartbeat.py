"""The heartbeat bucket: what `alive` lists, and that listing costs the server nothing it keeps."""

from __future__ import annotations

from shared.bus import Bus
from shared.heartbeat import BUCKET, Heartbeat, alive


async def test_listing_the_live_instances_leaves_no_consumer_behind(bus: Bus) -> None:
    """Services list heartbeats on every turn: a consumer per listing piled up on the server until it
    refused more (KeyValue.keys() did that)."""
    async with Heartbeat(bus) as heartbeat:
        await heartbeat.beat()
        for _ in range(50):
            [beat] = await alive(bus)
            assert (beat.service, beat.instance) == (bus.producer.service, bus.producer.instance)
            assert await alive(bus, bus.producer.service) == [beat]
            assert await alive(bus, "nobody") == []
        stream = await bus.js.stream_info(f"KV_{BUCKET}")
        assert stream.state.consumer_count == 0
    assert await alive(bus) == []  # leaving deletes the key: a deleted key is not alive
