"""tests/vectors/hawk.json: the HAWK vectors the web pages' JS is checked against
(tests/web/hawk.test.mjs) are reproduced by the Python core, and the header the pages send
(Firefox's attribute order) verifies with it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.crypto import fxatokens, hawk

VECTORS = json.loads(
    (Path(__file__).parents[2] / "vectors" / "hawk.json").read_text(encoding="utf-8"))["vectors"]


def _body(v: dict) -> bytes | None:
    return None if v["body_utf8"] is None else v["body_utf8"].encode("utf-8")


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_python_core_reproduces_vector(v: dict) -> None:
    key = bytes.fromhex(v["key"])
    if "token" in v:
        creds = fxatokens.derive(bytes.fromhex(v["token"]), v["kind"])
        assert creds.id == v["id"] and creds.hawk_key == key
    exp = v["expected"]
    body = _body(v)
    phash = hawk.payload_hash(v["content_type"] or "", body) if body is not None else ""
    assert phash == exp["hash"]
    hdr = hawk.HawkHeader(id=v["id"], ts=str(v["ts"]), nonce=v["nonce"], mac="", hash=phash)
    normalized = hawk.normalized_string(hdr, v["method"], v["resource"], v["host"], v["port"])
    assert normalized.decode("utf-8") == exp["normalized_utf8"]
    assert hawk.compute_mac(key, normalized) == exp["mac"]
    assert hawk.sign_header(key, v["id"], v["method"], v["resource"], v["host"], v["port"],
                            v["ts"], v["nonce"], content_type=v["content_type"],
                            body=body) == exp["python_header"]


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_firefox_ordered_header_verifies(v: dict) -> None:
    exp = v["expected"]
    parsed = hawk.parse_header(exp["firefox_header"])
    assert (parsed.id, parsed.ts, parsed.nonce, parsed.hash, parsed.mac) == (
        v["id"], str(v["ts"]), v["nonce"], exp["hash"], exp["mac"])
    hawk.verify_mac(parsed, bytes.fromhex(v["key"]), v["method"], v["resource"],
                    v["host"].lower(), v["port"])
    body = _body(v)
    if body is not None:
        hawk.verify_payload(parsed, v["content_type"], body)
        with pytest.raises(hawk.HawkError):
            hawk.verify_payload(parsed, v["content_type"], body + b" ")
    with pytest.raises(hawk.HawkError):
        hawk.verify_mac(parsed, bytes.fromhex(v["key"]), v["method"], v["resource"] + "x",
                        v["host"], v["port"])
