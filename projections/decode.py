"""Stored events to domain events, for the views: the library's mapper, parsed faster.

The ledger stores events as the library's JSON (with UUID, Decimal and datetime values as
`{"_type_": ..., "_data_": ...}` objects). `FastMapper` parses that JSON with orjson and
turns the three typed values back into objects itself, giving the same events as the
library's `Mapper` (tested). A mapper with a cipher, a compressor or other transcodings is
used as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import datetime
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

import orjson
from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent, find_id_convertor
from eventsourcing.utils import resolve_topic

from projections.view import AT, CID

TYPES: dict[str, Callable[[str], Any]] = {
    "uuid_hex": UUID,
    "decimal_str": Decimal,
    "datetime_iso": datetime.fromisoformat,
}


def _value(value: Any) -> Any:
    if type(value) is dict:
        if len(value) == 2 and "_type_" in value and "_data_" in value:
            return TYPES[value["_type_"]](_value(value["_data_"]))
        for k, v in value.items():
            if type(v) is dict or type(v) is list:
                value[k] = _value(v)
        return value
    if type(value) is list:
        return [_value(v) if type(v) is dict or type(v) is list else v for v in value]
    return value


def _fields(state: dict[str, Any], typed: int) -> dict[str, Any]:
    """`_value` of an event's state holding `typed` "_type_" texts: when they are all the
    fields' own typed values (the event's times, ids), nothing deeper is walked."""
    found = 0
    for k, v in state.items():
        if type(v) is dict and len(v) == 2 and "_type_" in v and type(v.get("_data_")) is str:
            state[k] = TYPES[v["_type_"]](v["_data_"])
            found += 1
    return state if found == typed else _value(state)


class FastMapper(Mapper[UUID]):
    """Decodes like `mapper`; stored events only (the views never encode)."""

    def __init__(self, mapper: Mapper[Any]) -> None:
        super().__init__(transcoder=mapper.transcoder)
        self._stream: Any = None  # the last stream id met, and its text
        self._stream_text = ""

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        cls = resolve_topic(stored_event.topic)
        try:
            raw = orjson.loads(stored_event.state)
            stamp = raw.get("timestamp")
            state: dict[str, Any] = _fields(raw, stored_event.state.count(b'"_type_"'))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            return super().to_domain_event(stored_event)  # the library says what is wrong
        stream = stored_event.originator_id
        state["originator_id"] = find_id_convertor(cls, cast(Hashable, type(stream)))(stream)
        # The views' text of the stream id and of the event's time, while at hand.
        if stream != self._stream:
            self._stream, self._stream_text = stream, str(stream)
        state[CID] = self._stream_text
        if type(stamp) is dict:
            text = stamp["_data_"]
            if len(text) == 32 and text[19] == "." and text.endswith("+00:00"):
                state[AT] = text  # what `view.at` makes of this time
        state["originator_version"] = stored_event.originator_version
        class_version = getattr(cls, "class_version", 1)
        version = state.pop("class_version", 1)
        while version < class_version:
            getattr(cls, f"upcast_v{version}_v{version + 1}")(state)
            version += 1
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event


def fast(mapper: Mapper[Any]) -> Mapper[Any]:
    """`FastMapper` for a mapper it decodes exactly like, else `mapper` itself."""
    transcoder = mapper.transcoder
    plain = (
        type(mapper) is Mapper
        and mapper.cipher is None
        and mapper.compressor is None
        and type(transcoder) is JSONTranscoder
        and set(transcoder.names) <= set(TYPES)
    )
    return FastMapper(mapper) if plain else mapper
