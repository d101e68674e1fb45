"""Make a JetStream cluster ready for AlphaLab before any service starts: run by init containers.

    python bootstrap.py create [--replicas 3]    the strategist pod's init container
    python bootstrap.py wait                     every other AlphaLab pod's init container

Every service that connects creates the event stream, the heartbeat bucket and the blob store when
they are missing (shared/bus.py, shared/heartbeat.py, shared/blobs.py), with one replica, and leaves
existing ones as they are. On a three-node cluster one replica means the lab stops whenever the node
holding it does. So `create` makes all three with `--replicas` replicas first (the stream last, once
the other two exist), and `wait` holds a pod until the stream exists: no service can create one with a
single replica before it. Both connect with the pod's own ALPHALAB_NATS_URL: `create` needs the
strategist user (the one user that may create all three, infra/nats/accounts.conf); `wait` needs only
STREAM.INFO on the stream, which every service user has.

Idempotent: what exists is left as it is, except a stream with fewer replicas than asked, which is
updated (the strategist may update the stream; no user may update the bucket's or the store's
streams, so those are only reported). Retries until the cluster answers (leaders are elected a few
seconds after the pods start); gives up after --timeout seconds with exit 1, and the pod's restart
policy tries again.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import nats.errors
import nats.js.errors
from nats.js import api

from shared.blobs import BLOB_BUCKET
from shared.bus import STREAM, Bus, stream_config
from shared.errors import NatsUnavailable
from shared.events import Producer
from shared.heartbeat import BUCKET, HEARTBEAT_TTL_S
from shared.secrets import shown_url
from shared.settings import Settings

_TRANSIENT = (nats.errors.Error, nats.js.errors.Error, NatsUnavailable, TimeoutError, OSError)


async def _replicas(bus: Bus, stream: str) -> int | None:
    """The replica count of `stream`, or None if it does not exist."""
    try:
        info = await bus.js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        return None
    return info.config.num_replicas or 1


async def create(bus: Bus, replicas: int) -> None:
    have = await _replicas(bus, f"KV_{BUCKET}")
    if have is None:
        await bus.js.create_key_value(bucket=BUCKET, ttl=HEARTBEAT_TTL_S, history=1, replicas=replicas)
        print(f"created bucket {BUCKET} with {replicas} replicas", flush=True)
    elif have < replicas:
        print(f"bucket {BUCKET} exists with {have} replica(s), left as it is", flush=True)
    have = await _replicas(bus, f"OBJ_{BLOB_BUCKET}")
    if have is None:
        await bus.js.create_object_store(BLOB_BUCKET, config=api.ObjectStoreConfig(replicas=replicas))
        print(f"created object store {BLOB_BUCKET} with {replicas} replicas", flush=True)
    elif have < replicas:
        print(f"object store {BLOB_BUCKET} exists with {have} replica(s), left as it is", flush=True)
    have = await _replicas(bus, STREAM)
    if have is None:
        await bus.js.add_stream(stream_config(replicas))
        print(f"created stream {STREAM} with {replicas} replicas", flush=True)
    elif have < replicas:
        config = (await bus.js.stream_info(STREAM)).config
        config.num_replicas = replicas
        await bus.js.update_stream(config)
        print(f"stream {STREAM} had {have} replica(s), now {replicas}", flush=True)
    else:
        print(f"stream {STREAM} exists with {have} replica(s)", flush=True)


async def wait(bus: Bus) -> bool:
    have = await _replicas(bus, STREAM)
    if have is None:
        return False
    print(f"stream {STREAM} exists with {have} replica(s)", flush=True)
    return True


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["create", "wait"])
    parser.add_argument("--replicas", type=int, default=3, help="replicas of what `create` makes")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this many seconds")
    args = parser.parse_args(argv)
    url = Settings.load().nats_url
    if not url:
        print("ALPHALAB_NATS_URL is not set", file=sys.stderr)
        return 2
    deadline = time.monotonic() + args.timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            bus = await Bus.connect(
                url, Producer(service="bootstrap", instance=args.mode), ensure_stream=False
            )
        except NatsUnavailable as err:
            last = str(err)
        else:
            try:
                if args.mode == "create":
                    await create(bus, args.replicas)
                    return 0
                if await wait(bus):
                    return 0
                last = f"stream {STREAM} does not exist yet (the strategist pod's init container creates it)"
            except _TRANSIENT as err:  # no JetStream leader yet, a node restarting, ...
                last = f"{type(err).__name__}: {err}"
            finally:
                await bus.close()
        print(f"{args.mode}: waiting ({last})", flush=True)
        await asyncio.sleep(2.0)
    print(f"{args.mode}: gave up after {args.timeout:g} s at {shown_url(url)}: {last}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
