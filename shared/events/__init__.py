"""Typed events: the envelope, the payload catalogue, and the wire codec."""

from shared.events.catalogue import *  # noqa: F403 - the catalogue's __all__ is the public surface
from shared.events.catalogue import __all__ as _catalogue
from shared.events.codec import MAX_EVENT_BYTES, decode, encode
from shared.events.envelope import (
    SUBJECT_PREFIX,
    Event,
    Payload,
    Producer,
    Unrecognized,
    event_class,
    known_events,
    payload_types,
    subject_for,
)

__all__ = [
    *_catalogue,
    "MAX_EVENT_BYTES",
    "SUBJECT_PREFIX",
    "Event",
    "Payload",
    "Producer",
    "Unrecognized",
    "decode",
    "encode",
    "event_class",
    "known_events",
    "payload_types",
    "subject_for",
]
