"""The views' fast event parsing gives what the library's mapper gives."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    UUIDAsHex,
)

from projections.decode import FastMapper, fast
from projections.view import AT, CID, at, cid, iso, js, loads


class Thing(Aggregate):
    class Changed(Aggregate.Event):
        payload: Any


def library_mapper() -> Mapper[UUID]:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return Mapper(transcoder=transcoder)


PAYLOADS: list[Any] = [
    None,
    "plain",
    {"nested": {"at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "n": [1, 2.5, "x"]}},
    [
        uuid4(),
        Decimal("1.10"),
        {"deep": [datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2)))]},
    ],
    {"_type_": "looks typed", "other": 1},
    {"_type_": "only one key"},
    {"unicode": "é€😀", "empty": {}, "list": []},
    {"text": "_type_", "texts": ["_type_", {"_data_": "_type_"}]},
    uuid4(),
    {"policy": {"deep": {"deeper": [1, {"x": None}]}}, "when": [datetime(2026, 3, 4, tzinfo=UTC)]},
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_fast_mapper_decodes_as_the_library_does(payload: Any) -> None:
    mapper = library_mapper()
    thing = Thing()
    thing.trigger_event(Thing.Changed, payload=payload)
    for event in thing.collect_events():
        stored = mapper.to_stored_event(event)
        expected = mapper.to_domain_event(stored)
        got = FastMapper(mapper).to_domain_event(stored)
        assert type(got) is type(expected)
        assert fields(got) == vars(expected)
        assert repr(fields(got)) == repr(vars(expected))  # same types all the way down
        assert_kept_texts(got)


def fields(event: Any) -> dict[str, Any]:
    """The event's fields, less the texts the decoder keeps for the views."""
    return {k: v for k, v in vars(event).items() if k not in (CID, AT)}


def assert_kept_texts(event: Any) -> None:
    """The texts the decoder keeps are what the views would make of the fields."""
    assert vars(event)[CID] == str(event.originator_id)
    if AT in vars(event):
        assert vars(event)[AT] == iso(event.timestamp)


@pytest.mark.parametrize("microsecond", [0, 1, 999_999])
def test_the_kept_time_is_the_views_text_of_it(microsecond: int) -> None:
    mapper = library_mapper()
    thing = Thing()
    thing.trigger_event(
        Thing.Changed,
        payload=None,
        timestamp=datetime(2026, 5, 6, 7, 8, 9, microsecond, tzinfo=UTC),
    )
    event = thing.collect_events()[-1]
    got = FastMapper(mapper).to_domain_event(mapper.to_stored_event(event))
    assert_kept_texts(got)
    assert at(got) == iso(event.timestamp)
    assert cid(got) == str(thing.id)


def test_an_unknown_typed_value_is_refused_as_the_library_refuses_it() -> None:
    mapper = library_mapper()
    topic = "tests.unit.test_view_decode:Thing.Changed"
    state = b'{"timestamp":{"_type_":"mystery","_data_":"1"},"payload":null}'
    with pytest.raises(MapperDeserialisationError, match="mystery"):
        FastMapper(mapper).to_domain_event(StoredEvent(uuid4(), 1, topic, state))
    with pytest.raises(MapperDeserialisationError, match="Failed to deserialise"):
        FastMapper(mapper).to_domain_event(StoredEvent(uuid4(), 1, topic, b"{not json"))


def test_other_mappers_are_used_as_they_are() -> None:
    plain = library_mapper()
    assert isinstance(fast(plain), FastMapper)
    compressed = Mapper(transcoder=plain.transcoder, compressor=ZlibCompressor())
    assert fast(compressed) is compressed
    extra = JSONTranscoder()
    extra.register(UUIDAsHex())
    extra.register(_Custom())
    assert not isinstance(fast(Mapper(transcoder=extra)), FastMapper)


class _Custom(UUIDAsHex):
    name = "custom_uuid"


def test_view_json_is_compact_sorted_and_keeps_what_orjson_cannot_write() -> None:
    assert (
        js({"b": [1, "é"], "a": {"d": True, "c": None}}) == '{"a":{"c":null,"d":true},"b":[1,"é"]}'
    )
    assert js({}) == "{}" and js(()) == "[]" and js([]) == "[]"
    lone = "\ud800"
    assert json.loads(js({"x": lone})) == {"x": lone}
    assert json.loads(js([2**70])) == [2**70]


@pytest.mark.parametrize(
    "value", [{"b": [1, "é", 2.5], "a": {"c": None}}, [], {}, {"x": "\ud800"}, [2**70]]
)
def test_view_json_reads_back_what_it_wrote(value: Any) -> None:
    assert loads(js(value)) == value
    assert loads(js(value).encode("utf-8", "surrogatepass")) == value
