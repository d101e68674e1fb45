"""JSON Schema of every event type, so that a service in another language can join the bus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from shared.events.envelope import SUBJECT_PREFIX, event_class, payload_types

__all__ = ["event_schemas", "write_schemas"]


def event_schemas() -> dict[str, dict[str, Any]]:
    """The schema of each full event (envelope with its typed payload), by event type."""
    return {name: event_class(name).model_json_schema() for name in sorted(payload_types())}


def write_schemas(directory: Path) -> list[Path]:
    """Write `<type>.schema.json` per event type and an `index.json` describing the wire format."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    schemas = event_schemas()
    for name, schema in schemas.items():
        path = directory / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    index = {
        "subject": f"{SUBJECT_PREFIX}.<campaign_id>.<type>",
        "dedup_header": "Nats-Msg-Id carries event_id",
        "types": {
            name: {"schema_version": payload_types()[name].VERSION, "file": f"{name}.schema.json"}
            for name in schemas
        },
    }
    index_path = directory / "index.json"
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return [*written, index_path]
