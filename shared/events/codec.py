"""Bytes on the wire <-> `Event`, with one error type for everything that is not a valid event."""

from __future__ import annotations

from pydantic import ValidationError

from shared.errors import MalformedEvent
from shared.events.envelope import Event, UnrecognizedEvent, known_events, payload_types

__all__ = ["MAX_EVENT_BYTES", "decode", "encode"]

# Large blobs (code, logs, plots) travel as digests; an event bigger than this is a mistake.
MAX_EVENT_BYTES = 256 * 1024


def encode(event: Event) -> bytes:
    data = event.model_dump_json().encode()
    if len(data) > MAX_EVENT_BYTES:
        raise MalformedEvent(
            f"event {event.event_id} ({event.type}) is {len(data)} bytes, over the "
            f"{MAX_EVENT_BYTES}-byte limit; store large content as a blob and send its digest"
        )
    return data


def decode(data: bytes) -> Event:
    """The event in `data`, or MalformedEvent saying why it is not one."""
    if len(data) > MAX_EVENT_BYTES:
        raise MalformedEvent(f"oversize: {len(data)} bytes, limit {MAX_EVENT_BYTES}")
    try:
        return known_events().validate_json(data)
    except ValidationError as err:
        error = err
    try:
        event = UnrecognizedEvent.model_validate_json(data)
    except ValidationError as envelope_error:
        # For a type this code does not know, the union's complaint ("no such tag") is beside the
        # point: what is wrong is in the envelope.
        unknown_type = error.errors()[0]["type"] == "union_tag_invalid"
        raise MalformedEvent(_describe(envelope_error if unknown_type else error)) from None
    known = payload_types().get(event.type)
    if known is not None and event.schema_version <= known.VERSION:
        raise MalformedEvent(_describe(error))
    return event


def _describe(err: ValidationError) -> str:
    first = err.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "message"
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{first['type']} at {where}: {first['msg']}{more}"
