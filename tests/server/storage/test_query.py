"""Sans-IO wire rules: timestamps, query parameters, headers, bodies, rendering."""

from __future__ import annotations

import json

import pytest

from server.settings import StorageLimits
from server.storage import query, timestamps
from server.storage.query import (
    INDEX,
    JSON,
    NEWEST,
    NEWLINES,
    OLDEST,
    BsoQuery,
    Offset,
    ProtocolError,
)

LIMITS = StorageLimits()


def status(exc: pytest.ExceptionInfo[ProtocolError]) -> tuple[int, int]:
    return exc.value.status, exc.value.code


# --------------------------------------------------------------------------- timestamps


def test_fmt_always_two_decimals() -> None:
    assert timestamps.fmt(1700000000100) == "1700000000.10"
    assert timestamps.fmt(1700000000000) == "1700000000.00"
    assert timestamps.fmt(0) == "0.00"
    assert timestamps.fmt(10) == "0.01"


@pytest.mark.parametrize(("text", "ms"), [
    ("1700000000.12", 1700000000120), ("1700000000.129", 1700000000120),
    ("1700000000", 1700000000000), ("0", 0), (".5", 500), ("5.", 5000), ("1e3", 1000000),
    ("+2.5", 2500), ("1" * 40, timestamps.MAX_MS), ("9e9999", timestamps.MAX_MS),
])
def test_parse_floors_to_10ms(text: str, ms: int) -> None:
    assert timestamps.parse(text) == ms


@pytest.mark.parametrize("text", ["-3", "-0.5", "nan", "NaN", "inf", "Infinity", "", " ", "abc",
                                  "1,5", "0x10", "1e99999", "1.2.3", "١٢"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(timestamps.BadTimestamp):
        timestamps.parse(text)


def test_now_is_multiple_of_ten() -> None:
    assert timestamps.now_ms() % 10 == 0


# --------------------------------------------------------------------------- ids


@pytest.mark.parametrize("bad", ["A\n", "\nN", "A\nB", "A\tB", "", "X" * 65, "é", "a\x7f"])
def test_bso_ids_fullmatch(bad: str) -> None:
    assert not query.valid_bso_id(bad)


def test_bso_ids_accept_printable_ascii() -> None:
    assert query.valid_bso_id(" ~/{}")
    assert query.valid_bso_id("X" * 64)
    assert not query.valid_collection("a" * 33)
    assert not query.valid_collection("meta\n")


# --------------------------------------------------------------------------- query string


def q(text: str) -> BsoQuery:
    return query.parse_bso_query(query.query_pairs(text.encode()))


def test_query_defaults_and_unknown_params() -> None:
    assert q("blabla=1") == BsoQuery()


def test_full_is_true_when_present_at_all() -> None:
    assert q("full").full and q("full=").full and q("full=0").full
    assert not q("").full


def test_ids_trimmed_empties_dropped_and_limited() -> None:
    assert q("ids=%20a%20,,b,").ids == ["a", "b"]
    assert q("ids=" + ",".join(str(i) for i in range(100))).ids[-1] == "99"
    with pytest.raises(ProtocolError):
        q("ids=" + ",".join(str(i) for i in range(101)))
    assert q("ids=a%0A").ids == ["a"]  # trimmed like Rust's str::trim
    with pytest.raises(ProtocolError):
        q("ids=a%09b")
    assert q("ids=test-0%2Ctest-1").ids == ["test-0", "test-1"]


@pytest.mark.parametrize("text", [
    "limit=-1", "limit=abc", "limit=", "limit=1.5", "limit=99999999999", "newer=abc",
    "older=-3", "newer=", "sort=", "sort=NEWEST", "sort=random", "offset=", "offset=abc",
    "offset=-1", "offset=1:2:3", "offset=a:1", "offset=99999999999999999999", "limit=1&limit=2",
])
def test_bad_params_are_400(text: str) -> None:
    with pytest.raises(ProtocolError) as exc:
        q(text)
    assert status(exc) == (400, 0)


def test_offsets_parse() -> None:
    assert q("offset=12").offset == Offset(12)
    assert q("offset=1700000000120:3").offset == Offset(3, 1700000000120)
    assert str(Offset(3, 1700000000120)) == "1700000000120:3"
    assert str(Offset(7)) == "7"


def test_keyset_offset_must_lie_within_newer_older() -> None:
    with pytest.raises(ProtocolError):
        q("newer=2&offset=1000:1")  # bound below newer
    with pytest.raises(ProtocolError):
        q("older=1&offset=2000:1")  # bound above older
    assert q("newer=2&offset=1000:1&sort=index").offset == Offset(1, 1000)


def test_sorts() -> None:
    assert [q(f"sort={s}").sort for s in ("newest", "oldest", "index")] == [NEWEST, OLDEST,
                                                                           INDEX]


def test_batch_params() -> None:
    def bp(text: str) -> query.BatchParams | None:
        return query.parse_batch_params(query.query_pairs(text.encode()))

    assert bp("") is None
    assert bp("batch=true") == query.BatchParams(None, False)
    assert bp("batch") == query.BatchParams(None, False)
    assert bp("batch=True&commit=TRUE").is_plain_post
    assert bp("batch=123&commit=true") == query.BatchParams(123, True)
    for bad in ("commit=true", "batch=sammich", "batch=1&commit=yes", "batch=-1",
                "batch=1&batch=2", "batch=1234567890123456789"):
        with pytest.raises(ProtocolError):
            bp(bad)


# --------------------------------------------------------------------------- headers


def headers(**kw: str):  # type: ignore[no-untyped-def]
    table = {k.replace("_", "-").lower(): v for k, v in kw.items()}
    return lambda name: table.get(name.lower())


def test_preconditions() -> None:
    pre = query.parse_preconditions(headers(x_if_modified_since="10.5"))
    assert pre.verdict(10500) == 304 and pre.verdict(10510) is None
    pre = query.parse_preconditions(headers(x_if_unmodified_since="0"))
    assert pre.verdict(0) is None and pre.verdict(10) == 412
    assert query.parse_preconditions(headers()).verdict(123) is None
    for bad in ({"x_if_modified_since": "1", "x_if_unmodified_since": "1"},
                {"x_if_modified_since": "-3"}, {"x_if_unmodified_since": "soon"},
                {"x_if_modified_since": ""}):
        with pytest.raises(ProtocolError) as exc:
            query.parse_preconditions(headers(**bad))
        assert status(exc) == (400, 0)


def test_declared_sizes_inclusive() -> None:
    query.check_declared_sizes(headers(x_weave_total_bytes=str(LIMITS.max_total_bytes)), LIMITS)
    query.check_declared_sizes(headers(x_weave_records="100", x_weave_bytes="5"), LIMITS)
    with pytest.raises(ProtocolError) as exc:
        query.check_declared_sizes(
            headers(x_weave_total_bytes=str(LIMITS.max_total_bytes + 1)), LIMITS)
    assert status(exc) == (400, 17)
    with pytest.raises(ProtocolError) as exc:
        query.check_declared_sizes(headers(x_weave_records="101"), LIMITS)
    assert status(exc) == (400, 17)
    for bad in ("abc", "-1", "", "1.5", "99999999999"):
        with pytest.raises(ProtocolError) as exc:
            query.check_declared_sizes(headers(x_weave_total_records=bad), LIMITS)
        assert status(exc) == (400, 0)


def test_body_kind() -> None:
    assert query.body_kind("application/json") == JSON
    assert query.body_kind("Application/JSON; charset=utf-8") == JSON
    assert query.body_kind("text/plain") == JSON
    assert query.body_kind("application/newlines") == NEWLINES
    for bad in (None, "", "application/octet-stream", "json", "application/json/x"):
        assert query.body_kind(bad) is None


@pytest.mark.parametrize(("accept", "reply"), [
    (None, JSON), ("", JSON), ("*/*", JSON), ("application/json", JSON),
    ("application/newlines", NEWLINES), ("x/yy", None), ("text/plain", None),
    ("application/json;q=0.9,*/*;q=0.2", JSON),
    ("foo/bar;q=0.1,application/newlines;q=0.5", NEWLINES),
    ("*/*;q=0.2,foo/bar", JSON), ("garbage", JSON), ("application/json;q=abc", JSON),
    ("application/json; charset=utf-8", None),
])
def test_negotiate(accept: str | None, reply: str | None) -> None:
    assert query.negotiate(accept) == reply


# --------------------------------------------------------------------------- bodies


def put(obj: object, coll: str = "col", raw: bytes | None = None) -> query.BsoIn:
    body = raw if raw is not None else json.dumps(obj).encode()
    return query.parse_put_body(body, JSON, "url-id", coll, LIMITS)


def test_put_body_fields() -> None:
    assert put({"payload": "x", "sortindex": -42, "ttl": 0}) == query.BsoIn("url-id", "x", -42, 0)
    assert put({"id": "other", "modified": 12, "collection": "y"}) == query.BsoIn("url-id")
    assert put({"payload": None, "ttl": None, "sortindex": None}) == query.BsoIn("url-id")


@pytest.mark.parametrize("obj", [
    "notabso", 42, [], None, {"id": ["01"]}, {"payload": {"3": "4"}}, {"payload": 42},
    {"sortindex": "2"}, {"sortindex": 2.0}, {"sortindex": True}, {"sortindex": 10**9},
    {"sortindex": 2**31}, {"sortindex": 10**400}, {"ttl": -1}, {"ttl": "4"}, {"ttl": 1.5},
    {"ttl": False}, {"ttl": 10**9}, {"ttl": 2**32}, {"unexpected": 1}, {"id": "A\n"},
])
def test_put_body_rejects(obj: object) -> None:
    with pytest.raises(ProtocolError) as exc:
        put(obj)
    assert status(exc) == (400, 8)


@pytest.mark.parametrize("raw", [
    b"", b"{", b'{"payload": NaN}', b'{"ttl": Infinity}', b'{"payload": "\\ud800"}',
    b'{"payload": "x"} junk', b"\xff\xfe{}", b"[" * 100000, b"\xef\xbb\xbf{}",
    b'{"x": "\\udc00"}', b'{"ttl": ' + b"9" * 5000 + b"}",
])
def test_put_malformed_json_is_400_8(raw: bytes) -> None:
    with pytest.raises(ProtocolError) as exc:
        put(None, raw=raw)
    assert status(exc) == (400, 8)


def test_put_paired_surrogates_are_fine() -> None:
    assert put(None, raw=b'{"payload": "\\ud83d\\ude00"}').payload == "\U0001f600"


def test_put_size_and_known_bad_payload() -> None:
    limits = StorageLimits(max_record_payload_bytes=4)
    assert query.parse_put_body(b'{"payload":"\xc3\xa9\xc3\xa9"}', JSON, "a", "c", limits)
    with pytest.raises(ProtocolError):  # 5 bytes
        query.parse_put_body(b'{"payload":"\xc3\xa9\xc3\xa9x"}', JSON, "a", "c", limits)
    bad = json.dumps({"ciphertext": "x", "IV": "AAAAAAAAAAAAAAAAAAAAAA=="})
    with pytest.raises(ProtocolError):
        put({"payload": bad}, coll="crypto")
    assert put({"payload": bad}, coll="xxx_col2").payload == bad
    with pytest.raises(ProtocolError):  # newlines is a POST-only format
        query.parse_put_body(b"{}", NEWLINES, "a", "c", LIMITS)


def post(items: object, kind: str = JSON, limits: StorageLimits = LIMITS,
         coll: str = "col") -> query.PostItems:
    body = items if isinstance(items, bytes) else json.dumps(items).encode()
    return query.parse_post_body(body, kind, coll, limits)


def test_post_per_item_failures() -> None:
    out = post([{"id": "01", "payload": "GOOD"}, {"id": "02", "invalid": "ya"},
                {"id": "A\n", "payload": "x"}, {"id": "s", "sortindex": "FAIL"},
                {"id": "t", "ttl": 10**9}, {"id": "b", "payload": True}])
    assert [b.id for b in out.valid] == ["01"]
    assert out.failed == {"02": "unknown field invalid", "A\n": "invalid bso: id: Invalid id",
                          "s": "invalid json", "t": "invalid bso: ttl: Invalid TTL",
                          "b": "invalid json"}


@pytest.mark.parametrize("items", [
    "notalist", 42, {}, [{"id": "01"}, "BAD"], [{"payload": "x"}], [{"id": 5}],
    [{"id": "a"}, {"id": "a"}], [{"id": None}],
])
def test_post_whole_request_failures(items: object) -> None:
    with pytest.raises(ProtocolError) as exc:
        post(items)
    assert status(exc) == (400, 8)


def test_post_empty_bodies() -> None:
    assert post(b"[]").valid == []
    assert post(b"", NEWLINES).valid == []
    for body, kind in ((b"", JSON), (b"{}", JSON), (b"\n", NEWLINES), (b"{}", NEWLINES),
                       (b"[]", NEWLINES), (b'{"id":"a"}\n\n{"id":"b"}', NEWLINES)):
        with pytest.raises(ProtocolError):
            post(body, kind)


def test_post_newlines() -> None:
    body = b'{"id":"01","payload":"hello\\nworld"}\r\n{"id":"02"}\n'
    out = post(body, NEWLINES)
    assert [(b.id, b.payload) for b in out.valid] == [("01", "hello\nworld"), ("02", None)]


def test_post_size_limits() -> None:
    limits = StorageLimits(max_post_bytes=10, max_record_payload_bytes=6, max_post_records=2)
    out = post([{"id": "a", "payload": "x" * 4}, {"id": "b", "payload": "x" * 7},
                {"id": "c", "payload": "x" * 6}, {"id": "d", "payload": ""},
                {"id": "e", "payload": "x"}], limits=limits)
    # b is too big itself; its size still counts, so everything after it fails too.
    assert [b.id for b in out.valid] == ["a"]
    assert set(out.failed) == {"b", "c", "d", "e"}
    assert set(out.failed.values()) == {"retry bytes"}
    out = post([{"id": str(i), "payload": "x"} for i in range(5)],
               limits=StorageLimits(max_post_records=3))
    assert len(out.valid) == 3 and out.failed == {"3": "retry bso", "4": "retry bso"}


def test_post_crypto_bad_iv_fails_request() -> None:
    bad = '{"IV": "AAAAAAAAAAAAAAAAAAAAAA=="}'
    with pytest.raises(ProtocolError):
        post([{"id": "keys", "payload": bad}], coll="crypto")
    assert post([{"id": "keys", "payload": bad}]).valid


# --------------------------------------------------------------------------- listings


def test_next_offset_numeric_for_ids_and_index() -> None:
    assert query.next_offset(BsoQuery(), 2, [30, 20]) == "2"
    assert query.next_offset(BsoQuery(offset=Offset(2)), 3, [30, 20, 10]) == "5"
    assert query.next_offset(BsoQuery(full=True, sort=INDEX, offset=Offset(4, 99)), 2,
                             [1, 2]) == "6"


def test_next_offset_keyset_for_full_listings() -> None:
    full = BsoQuery(full=True)
    assert query.next_offset(full, 3, [30, 20, 20]) == "20:2"
    assert query.next_offset(full, 3, [30, 20, 10]) == "10:1"
    # The whole page shares the previous bound: skip on past the earlier ones too.
    again = BsoQuery(full=True, offset=Offset(2, 20))
    assert query.next_offset(again, 2, [20, 20]) == "20:4"
    other = BsoQuery(full=True, offset=Offset(2, 30))
    assert query.next_offset(other, 2, [20, 20]) == "20:2"


def test_render_bso_two_decimals_and_no_internal_fields() -> None:
    text = query.render_bso("a", 1700000000100, "x\n\"", None)
    assert text == '{"id":"a","modified":1700000000.10,"payload":"x\\n\\""}'
    assert json.loads(query.render_bso("a", 10, "", 3)) == {
        "id": "a", "modified": 0.01, "payload": "", "sortindex": 3}


def test_render_lists() -> None:
    assert query.render_list(['"a"', '"b"'], JSON) == '["a","b"]'
    assert query.render_list(['"a"', '"b"'], NEWLINES) == '"a"\n"b"\n'
    assert query.render_list([], NEWLINES) == ""
    out = query.render_post_result(["a"], {"b": "retry bso"}, modified=1700000000000)
    assert out == '{"modified":1700000000.00,"success":["a"],"failed":{"b":"retry bso"}}'
