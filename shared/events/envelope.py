"""The event envelope and the payload registry.

Every event is an `Event` whose `payload` is a frozen model named as a past-tense noun; the kebab-case
`type` on the wire is derived from the payload's class name (`ProposalCreated` <-> `proposal-created`).
Registering a payload also derives a concrete `Event` subclass with `type` fixed to that name, so that
decoding is one discriminated-union validation inside pydantic-core (2.4x faster than a Python
validator per event, which is what makes a 1M-event replay take seconds). An event whose type is
unknown, or whose schema version is newer than this code knows, decodes as an `Event` with an
`Unrecognized` payload: it is stored and passed over instead of crashing a consumer.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SerializeAsAny, TypeAdapter, create_model

__all__ = [
    "Event",
    "Payload",
    "Producer",
    "Unrecognized",
    "event_class",
    "known_events",
    "payload_types",
    "subject_for",
    "SUBJECT_PREFIX",
]

SUBJECT_PREFIX = "alphalab.events"
_TOKEN = r"^[A-Za-z0-9_-]{1,64}$"
_ID = r"^[A-Za-z0-9_.:-]{1,160}$"
_REGISTRY: dict[str, type[Payload]] = {}
_EVENT_CLASSES: dict[str, type[Event]] = {}


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


class Payload(BaseModel):
    """Base of every typed payload; subclassing registers the type under its kebab-case name."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__name__ == "Unrecognized":
            return
        cls.TYPE = _kebab(cls.__name__)
        if cls.TYPE in _REGISTRY:
            raise TypeError(f"event type {cls.TYPE!r} is defined twice")
        _REGISTRY[cls.TYPE] = cls
        known_events.cache_clear()


class Unrecognized(Payload):
    """The payload of an event this code cannot interpret (unknown type or newer schema version)."""

    model_config = ConfigDict(frozen=True, extra="allow")


def payload_types() -> dict[str, type[Payload]]:
    """Every registered event type, by its kebab-case name."""
    return dict(_REGISTRY)


class Producer(BaseModel):
    """Which service (and which running instance of it) emitted an event."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    service: str = Field(min_length=1, max_length=64)
    instance: str = Field(min_length=1, max_length=128)


class Event(BaseModel):
    """The envelope every message on the bus and every row of the ledger carries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(pattern=_ID, default_factory=lambda: uuid.uuid4().hex)
    type: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=64)
    schema_version: int = Field(ge=1)
    campaign_id: str = Field(pattern=_TOKEN)
    occurred_at: AwareDatetime
    producer: Producer
    causation_id: str | None = Field(default=None, pattern=_ID)
    correlation_id: str | None = Field(default=None, pattern=_ID)
    payload: SerializeAsAny[Payload]

    @classmethod
    def new(
        cls,
        payload: Payload,
        *,
        campaign_id: str,
        producer: Producer,
        caused_by: Event | None = None,
        occurred_at: datetime | None = None,
        event_id: str | None = None,
    ) -> Event:
        """An event for `payload`; `caused_by` links it into the causation chain of another event."""
        fields: dict[str, Any] = {
            "type": payload.TYPE,
            "schema_version": payload.VERSION,
            "campaign_id": campaign_id,
            "occurred_at": occurred_at or datetime.now(UTC),
            "producer": producer,
            "payload": payload,
        }
        if event_id is not None:
            fields["event_id"] = event_id
        if caused_by is not None:
            fields["causation_id"] = caused_by.event_id
            fields["correlation_id"] = caused_by.correlation_id or caused_by.event_id
        return event_class(payload.TYPE)(**fields)

    @property
    def recognized(self) -> bool:
        """False for events of an unknown type or a newer schema version, which folds pass over."""
        return not isinstance(self.payload, Unrecognized)

    @property
    def subject(self) -> str:
        return subject_for(self.campaign_id, self.type)


def subject_for(campaign_id: str, event_type: str) -> str:
    """The NATS subject of an event: `alphalab.events.<campaign>.<type>`."""
    return f"{SUBJECT_PREFIX}.{campaign_id}.{event_type}"


class UnrecognizedEvent(Event):
    """An event of a type this code does not know, or of a newer schema version than it knows."""

    payload: Unrecognized


def event_class(event_type: str) -> type[Event]:
    """The concrete `Event` subclass whose payload is the registered type `event_type`."""
    if event_type not in _EVENT_CLASSES:
        payload = _REGISTRY[event_type]
        _EVENT_CLASSES[event_type] = create_model(
            f"{payload.__name__}Event",
            __base__=Event,
            __module__=__name__,
            type=(Literal[event_type], event_type),  # type: ignore[valid-type]
            schema_version=(int, Field(default=payload.VERSION, ge=1, le=payload.VERSION)),
            payload=(payload, ...),
        )
    return _EVENT_CLASSES[event_type]


@cache
def known_events() -> TypeAdapter[Event]:
    """One validator for every registered type, dispatching on the `type` field."""
    classes = tuple(event_class(name) for name in _REGISTRY)
    return TypeAdapter(Annotated[Union[classes], Field(discriminator="type")])  # noqa: UP007
