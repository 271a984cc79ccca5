"""The generated OpenAPI document says what the loader enforces (issue 10, D11)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from central.app import create_app
from central.http import meta
from central.http.schema import (
    INT64_MAX,
    INT64_MIN,
    SchemaClashError,
    SchemaRegistry,
    ValidationError,
    load,
    load_query,
)
from central.http.system import openapi_document
from tests.central.app_env import make_config


def _document(tmp_path: Path) -> dict[str, Any]:
    app = create_app(make_config("postgresql://nobody@127.0.0.1:1/none", tmp_path))
    return openapi_document(app)


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def test_two_schemas_under_one_name_raise() -> None:
    def make() -> type[Any]:
        @dataclass(frozen=True)
        class TransferIn:
            amount: int

        return TransferIn

    reg = SchemaRegistry()
    first, second = make(), make()
    reg.ref(first)
    reg.ref(first)  # the same class again is fine
    with pytest.raises(SchemaClashError, match="TransferIn"):
        reg.ref(second)


def test_certificate_transfer_is_documented_with_its_own_body(tmp_path: Path) -> None:
    doc = _document(tmp_path)
    body = doc["paths"]["/api/v1/certificates/{certificate_id}/transfer"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/CertificateTransferIn"
    assert "amount_wh" in doc["components"]["schemas"]["CertificateTransferIn"]["properties"]
    market = doc["paths"]["/api/v1/market/withdrawals"]["post"]["requestBody"]["content"]["application/json"]
    assert market["schema"]["$ref"] == "#/components/schemas/TransferIn"


def test_every_integer_is_bounded_and_every_string_pattern_anchored_and_nul_free(tmp_path: Path) -> None:
    doc = _document(tmp_path)
    for node in _walk(doc):
        if node.get("type") == "integer":
            assert INT64_MIN <= node["minimum"] <= node["maximum"] <= INT64_MAX, node
        if node.get("type") == "string" and "enum" not in node:
            pattern = node.get("pattern")
            assert pattern is not None, node
            assert pattern.startswith("^"), node
            assert pattern.endswith("$"), node
            assert not re.search(pattern, "ok\x00"), node


def test_challenge_documents_its_version_field(tmp_path: Path) -> None:
    doc = _document(tmp_path)
    assert doc["components"]["schemas"]["ChallengeOut"]["properties"]["v"] == {
        "enum": [1], "description": "message format version (protocol)"}


def test_rate_limited_routes_document_429(tmp_path: Path) -> None:
    doc = _document(tmp_path)
    for path, method in (("/api/v1/auth/login", "post"), ("/api/v1/meters/claim", "post"),
                         ("/api/v1/wallet/link-challenge", "post")):
        assert "429" in doc["paths"][path][method]["responses"], path


@dataclass(frozen=True)
class _Shapes:
    code: str = field(default="", metadata=meta(pattern="[0-9a-f]{4}"))
    email: str = field(default="a@b.c", metadata=meta(format="email"))
    n: int = 0


def test_the_loader_enforces_what_the_document_says() -> None:
    reg = SchemaRegistry()
    reg.ref(_Shapes)
    props = reg.components["_Shapes"]["properties"]
    assert props["code"]["pattern"] == "^(?:[0-9a-f]{4})$"
    with pytest.raises(ValidationError):
        load(_Shapes, {"code": "abcd\n"})  # ``re.search("^…$")`` would let a trailing newline through
    with pytest.raises(ValidationError):
        load(_Shapes, {"email": "a\x00@b.c"})
    assert re.search(props["email"]["pattern"], "ada@example.org")
    with pytest.raises(ValidationError):
        load(_Shapes, {"n": 2**63})
    for raw in (" 1", "1_0", "+1", "\u0661", "1.0"):
        with pytest.raises(ValidationError):
            load_query(_Shapes, {"n": raw})
    assert load_query(_Shapes, {"n": "-12"}).n == -12
