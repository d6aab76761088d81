from __future__ import annotations

import logging

import pytest

from appliance import logs

SECRETS = [
    'Authorization: Hawk id="abc123", ts="1", nonce="n", mac="bWFj"',
    "Authorization: Bearer fxs_" + "ab" * 32,
    '{"authPW": "' + "cd" * 32 + '", "email": "a@b.c"}',
    "sessionToken=" + "ef" * 32,
    '"keys_jwe": "eyJhbGciOiJFQ0RILUVTIiwiZW5jIjoiQTI1NkdDTSJ9..aXY.Y3Q.dGFn"',
    "password='hunter22'",
    "token " + "A" * 60,
]


@pytest.mark.parametrize("line", SECRETS)
def test_redact(line: str) -> None:
    out = logs.redact(line)
    for secret in ("abc123", "ab" * 32, "cd" * 32, "ef" * 32, "hunter22", "A" * 60,
                   "eyJhbGciOiJFQ0RILUVTIiwiZW5jIjoiQTI1NkdDTSJ9"):
        assert secret not in out, out


def test_filter_scrubs_args_and_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("t.redact")
    log.addFilter(logs.Redactor())
    with caplog.at_level(logging.DEBUG, logger="t.redact"):
        log.info("login with %s", {"authPW": "99" * 32})
        try:
            raise ValueError("bad token " + "Z" * 50)
        except ValueError:
            log.exception("failed")
    text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert "99" * 32 not in text and "Z" * 50 not in text
    assert "ValueError" in text


def test_query_description_hides_values() -> None:
    q = logs.describe_query(b"code=SECRET&state=xyz&full=1&newer=12.5")
    assert "SECRET" not in q and "xyz" not in q and "full=1" in q and "newer=12.5" in q
