"""Schemas: Hypothesis round trips (dataclass → JSON → dataclass) and arbitrary JSON never escaping as anything
but a ValidationError (→ 400), for the real request types."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.http.roles import Role
from central.http.schema import SchemaRegistry, ValidationError, dump, load, load_query, meta, to_json
from central.identity.auth_routes import LoginIn, RegisterIn, UserPage
from central.identity.device_routes import ChallengeAnswerIn, MeterIn, RegisterDeviceIn


@dataclass(frozen=True)
class Inner:
    n: int
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Outer:
    id: UUID
    at: datetime
    role: Role
    inner: list[Inner]
    note: str | None = None
    extra: dict[str, int] = field(default_factory=dict)
    score: int = field(default=0, metadata=meta(minimum=0, maximum=100))


# What the schema accepts: 64-bit integers, text PostgreSQL can store (no NUL, no lone surrogate).
ints = st.integers(-(2**63), 2**63 - 1)
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
outers = st.builds(
    Outer,
    id=st.uuids(),
    at=st.datetimes(datetime(1970, 1, 2), datetime(8999, 12, 30), timezones=st.just(UTC)),
    role=st.sampled_from(Role),
    inner=st.lists(st.builds(Inner, n=ints, tags=st.lists(texts))),
    note=st.none() | texts,
    extra=st.dictionaries(texts, ints),
    score=st.integers(0, 100),
)


@given(outers)
def test_round_trip(value: Outer) -> None:
    assert load(Outer, json.loads(json.dumps(dump(value)))) == value


@dataclass(frozen=True)
class Body:
    """What a response may hold, beyond what requests accept: any integer, floats, offsets, non-string keys."""

    outer: Outer
    n: Any
    f: float
    at: datetime
    keyed: dict[Any, int]
    items: tuple[Inner, ...]


bodies = st.builds(
    Body,
    outer=outers,
    n=st.integers() | st.none() | st.booleans() | texts,
    f=st.floats(allow_nan=False, allow_infinity=False),
    at=st.datetimes(timezones=st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-23 * 60, 23 * 60))),
    keyed=st.dictionaries(st.integers() | texts, ints, max_size=4),
    items=st.lists(st.builds(Inner, n=ints)).map(tuple),
)


@given(bodies)
def test_response_body_is_the_json_of_dump(value: Body) -> None:
    """to_json (orjson, falling back to dump for what orjson refuses) says what json.dumps(dump(value)) says."""
    assert json.loads(to_json(value)) == json.loads(json.dumps(dump(value)))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=20,
)


def _near(cls: type, base: dict) -> st.SearchStrategy[dict]:
    """Valid-looking objects of ``cls`` with some fields replaced by arbitrary JSON."""
    return st.fixed_dictionaries({}, optional={k: st.just(v) | json_values for k, v in base.items()}) | st.builds(
        lambda d, k, v: {**d, k: v}, st.just(base), st.text(max_size=10), json_values)


@settings(max_examples=300)
@given(st.data())
def test_arbitrary_input_is_a_validation_error_or_valid(data: st.DataObject) -> None:
    cases = [
        (RegisterIn, {"email": "a@b.org", "password": "pw", "role": "consumer"}),
        (LoginIn, {"email": "a@b.org", "password": "pw"}),
        (RegisterDeviceIn, {"device_id": "x" * 44, "pairing_code": "2E7G-BNFZ", "site_label": "", "meters": [
            {"serial": "S1", "model": "m", "protocol": "p", "meter_key": "k" * 8, "source": None}]}),
        (MeterIn, {"serial": "S1", "model": "m", "protocol": "p", "meter_key": "k" * 8}),
        (ChallengeAnswerIn, {"nonce": "0" * 64, "signature": "0" * 128}),
    ]
    cls, base = data.draw(st.sampled_from(cases))
    value = data.draw(json_values | _near(cls, base))
    error: ValidationError | None = None
    try:
        loaded = load(cls, value)
    except ValidationError as exc:
        error = exc
    if error is None:
        assert isinstance(loaded, cls)
    else:
        assert error.path.startswith("body")


@given(st.dictionaries(st.sampled_from(["limit", "after", "bogus"]), st.text(max_size=40)))
def test_query_parsing_never_crashes(query: dict[str, str]) -> None:
    try:
        page = load_query(UserPage, query)
    except ValidationError:
        return
    assert 1 <= page.limit <= 1000


def test_json_schema_of_request_types() -> None:
    reg = SchemaRegistry()
    reg.ref(RegisterDeviceIn)
    s = reg.components
    assert s["RegisterDeviceIn"]["required"] == ["device_id", "pairing_code"]
    assert s["RegisterDeviceIn"]["properties"]["pairing_code"]["writeOnly"] is True
    assert s["RegisterDeviceIn"]["properties"]["meters"]["items"] == {"$ref": "#/components/schemas/MeterIn"}
    assert s["MeterIn"]["properties"]["meter_key"]["writeOnly"] is True
    assert s["MeterIn"]["properties"]["source"]["anyOf"][1] == {"type": "null"}


@dataclass(frozen=True)
class _When:
    at: datetime


def test_a_date_time_error_says_what_is_wrong_with_it() -> None:
    """A year outside the range is named as such (9999 was called "not RFC 3339"), an impossible date as impossible,
    and another shape as not RFC 3339."""
    cases = {
        "9999-01-01T00:00:00Z": "between 1970 and 9000",
        "1969-12-31T23:59:59Z": "between 1970 and 9000",
        "0000-01-01T00:00:00Z": "between 1970 and 9000",
        "2026-13-01T00:00:00Z": "real date and time",
        "2026-02-30T00:00:00+07:00": "real date and time",
        "2026-W01-1T00:00:00Z": "RFC 3339",
        "2026-01-01T00:00:00": "RFC 3339",
    }
    for text, says in cases.items():
        with pytest.raises(ValidationError, match=says):
            load(_When, {"at": text})
    assert load(_When, {"at": "8999-12-31T23:59:59+00:00"}).at.year == 8999
