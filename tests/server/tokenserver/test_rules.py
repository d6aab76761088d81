"""Table-driven tests of the sans-IO tokenserver rules (storage-tokenserver.md §10)."""

from __future__ import annotations

import base64
import json

import pytest

from server.crypto import tokenlib
from server.tokenserver import rules
from server.tokenserver.rules import AuthData, Reject, UserRecord

UNAUTH = (401, "error", "body", "", "Unauthorized")
UNSUPPORTED = (401, "error", "body", "", "Unsupported")
CREDS = (401, "invalid-credentials", "body", "", "Unauthorized")
MISSING_KID = (401, "invalid-key-id", "header", "", "Missing X-KeyID header")
BAD_KID = (401, "invalid-key-id", "header", "", "Invalid X-KeyID header")
CS_MISMATCH = (401, "invalid-client-state", "body", "", "Unauthorized")
CS_BAD = (400, "error", "header", "X-Client-State", "Invalid client state value")
GEN = (401, "invalid-generation", "body", "", "Unauthorized")
KCA = (401, "invalid-keysChangedAt", "body", "", "Unauthorized")


def cs(reason: str) -> tuple[int, str, str, str, str]:
    return (401, "invalid-client-state", "header", "X-Client-State",
            f"Unacceptable client-state value {reason}")


def fields(fn, *args):  # type: ignore[no-untyped-def]
    with pytest.raises(Reject) as info:
        fn(*args)
    return info.value.fields()


# --- Authorization -----------------------------------------------------------------------

@pytest.mark.parametrize("value,token", [
    ("Bearer abc", "abc"),
    ("bearer abc", "abc"),
    ("BEARER abc", "abc"),
    ("BeArEr a b c", "a b c"),
    ("Bearer ", ""),
    ("Bearer  two", " two"),
    ("Bearer \tx", "\tx"),
])
def test_authorization_ok(value: str, token: str) -> None:
    assert rules.parse_authorization(value) == token


@pytest.mark.parametrize("value,expected", [
    (None, UNAUTH),
    ("", UNAUTH),
    ("Bearer", UNAUTH),
    ("Bearerabc", UNAUTH),
    ("Bearer\tabc", UNAUTH),
    ("Bearer caf\xe9", UNAUTH),  # latin-1 byte from the wire
    ("Bearer \u200b", UNAUTH),
    ("Bearer a\x00b", UNAUTH),
    ("Basic dXNlcjpwYXNz", UNSUPPORTED),
    ("Hawk id=\"x\"", UNSUPPORTED),
    ("Unsupported-Auth-Scheme IHACKYOU", UNSUPPORTED),
    (" Bearer abc", UNSUPPORTED),
    ("Bearer: abc", UNSUPPORTED),
])
def test_authorization_rejected(value: str | None, expected: tuple) -> None:
    assert fields(rules.parse_authorization, value) == expected


# --- X-KeyID / X-Client-State ------------------------------------------------------------

@pytest.mark.parametrize("kid,xcs,kca,state", [
    ("0000000001234-qqo", None, 1234, "aaaa"),
    ("0000000001234-qqo", "aaaa", 1234, "aaaa"),
    ("1234-qqo", None, 1234, "aaaa"),
    ("+1234-qqo", None, 1234, "aaaa"),
    ("0-qqo", None, None, "aaaa"),  # zero is "absent"
    ("0000000000000-qqo", None, None, "aaaa"),
    ("1700000000123-RgYdDqj07YtVOGmxWUJIpA", None, 1700000000123,
     "46061d0ea8f4ed8b553869b1594248a4"),
    ("1234-", None, 1234, ""),  # no client state bytes
    ("1234-", "\u200b", 1234, ""),  # unreadable X-Client-State is ignored (actix to_str)
    (str(2**63 - 1) + "-qqo", None, 2**63 - 1, "aaaa"),
])
def test_key_id_ok(kid: str, xcs: str | None, kca: int | None, state: str) -> None:
    assert rules.parse_key_id(kid, xcs) == rules.KeyId(kca, state)


@pytest.mark.parametrize("kid,xcs,expected", [
    (None, None, MISSING_KID),
    (None, "aaaa", MISSING_KID),
    ("\u200b", None, BAD_KID),
    ("1234-qq\xff", None, BAD_KID),
    ("1234-qqo\x7f", None, BAD_KID),
    ("00000000", None, CREDS),  # no '-'
    ("", None, CREDS),
    ("1234-notbase64", None, CREDS),  # length 9: impossible
    ("1234-state!", None, CREDS),
    ("1234-qqo=", None, CREDS),  # padding refused
    ("1234-qq+/", None, CREDS),  # standard alphabet refused
    ("1234-qqp", None, CREDS),  # non-canonical trailing bits
    ("1234-q", None, CREDS),
    ("1234-qqo-extra", None, CREDS),  # split at the first '-'; '-' is base64url alphabet
    ("notanumber-qqo", None, CREDS),
    ("-qqo", None, CREDS),
    ("12.5-qqo", None, CREDS),
    (" 1234-qqo", None, CREDS),
    ("1_000-qqo", None, CREDS),
    (str(2**63) + "-qqo", None, CREDS),  # i64 overflow
    ("\uff11\uff12-qqo", None, BAD_KID),  # full-width digits never reach int()
    ("1234-qqo", "bbbb", CS_MISMATCH),
    ("1234-qqo", "AAAA", CS_MISMATCH),  # compared as-is, case-sensitive
    ("1234-qqo", "state!", CS_BAD),
    ("1234-qqo", "", CS_BAD),
    ("1234-qqo", "a" * 33, CS_BAD),
    ("1234-qqo", "aa aa", CS_BAD),
    # order: base64 before X-Client-State before the kca integer
    ("1234-state!", "state!", CREDS),
    ("abc-qqo", "state!", CS_BAD),
    ("abc-qqo", "bbbb", CS_MISMATCH),
])
def test_key_id_rejected(kid: str | None, xcs: str | None, expected: tuple) -> None:
    assert fields(rules.parse_key_id, kid, xcs) == expected


# --- application, version, query ---------------------------------------------------------

def test_application_and_version() -> None:
    rules.check_application("sync", "1.5")
    app_err = (404, "error", "url", "application", "Unsupported application")
    assert fields(rules.check_application, "push", "1.5") == app_err
    assert fields(rules.check_application, "push", "1.0") == app_err  # app checked first
    assert fields(rules.check_application, "Sync", "1.5") == app_err
    assert fields(rules.check_application, "sync", "1.0") == (
        404, "error", "url", "1.0", "Unsupported application version")


@pytest.mark.parametrize("query,expected", [
    ("", 3600),
    ("duration=12", 12),
    ("duration=3600", 3600),
    ("duration=0", 0),
    ("duration=+60", 3600),  # '+' is a space in a query, as in Rust's form decoder
    ("duration=%2B60", 60),
    ("duration=%31%32", 12),
    ("dur%61tion=12", 12),
    ("duration=4000", 3600),
    ("duration=lolwut", 3600),
    ("duration=-1", 3600),
    ("duration=", 3600),
    ("duration", 3600),
    ("duration=1.5", 3600),
    ("duration=1e3", 3600),
    ("duration= 12", 3600),
    ("duration=1_0", 3600),
    ("duration=" + "9" * 40, 3600),
    ("other=1&other=2", 3600),
    ("v=1.155.0&duration=30", 30),
    ("&&duration=30&", 30),
    ("duration=%ff", 3600),
])
def test_duration(query: str, expected: int) -> None:
    assert rules.parse_duration(query, 3600) == expected


@pytest.mark.parametrize("query", ["duration=1&duration=2", "duration=1&duration=1",
                                   "duration&duration=5", "duration=1&dur%61tion=2"])
def test_duration_unparsable(query: str) -> None:
    assert fields(rules.parse_duration, query, 3600) == (
        400, "error", "url", "", "invalid query params")


# --- selecting the current record --------------------------------------------------------

def rec(uid: int, gen: int = 0, kca: int | None = None, state: str = "aaaa",
        created: int = 0, replaced: int | None = None) -> UserRecord:
    return UserRecord(uid, gen, kca, state, created, replaced)


def test_select_current_by_generation_then_created_at() -> None:
    rows = [rec(1, 10, state="aa", created=5, replaced=7), rec(2, 20, state="bb", created=6),
            rec(3, 20, state="cc", created=7), rec(4, 5, state="cc", created=9)]
    cur = rules.select_current(rows)
    assert cur.user.uid == 3
    assert cur.old_client_states == ("bb", "aa")  # the current state is never "old"
    assert cur.to_mark_replaced == (2, 4)
    assert not cur.needs_new_uid


def test_select_current_replaced_and_retired() -> None:
    assert rules.select_current([rec(1, replaced=3)]).needs_new_uid
    retired = rec(1, gen=rules.MAX_GENERATION, replaced=3)
    assert not rules.select_current([retired]).needs_new_uid
    assert rules.select_current([rec(1, created=1), rec(2, created=1)]).user.uid == 2


# --- consistency checks 1-8 --------------------------------------------------------------

def auth(gen: int | None = 1234, kca: int | None = 1234, state: str = "aaaa") -> AuthData:
    return AuthData("uid", "uid@host", gen, kca, state)


def user(gen: int = 1234, kca: int | None = 1234, state: str = "aaaa") -> UserRecord:
    return UserRecord(1, gen, kca, state, 1000, None)


CHECKS = [
    # (name, auth, user, old client states, expected error or None)
    ("ok-same", auth(), user(), (), None),
    ("ok-newer", auth(1300, 1300), user(), (), None),
    ("ok-no-generation", auth(None, 1234), user(), (), None),
    ("1: kca up, generation below it", auth(1235, 1236), user(1232, 1234), (), KCA),
    ("1: kca equal, generation below ok", auth(1233, 1234), user(1232, 1234), (), None),
    ("1: skipped without generation", auth(None, 1236), user(1232, 1234), (), None),
    ("1: before check 2", auth(1, 1236, ""), user(1, 1234, "aaaa"), (), KCA),
    ("2: empty client state", auth(state=""), user(), (), cs("empty string")),
    ("2: empty both ok", auth(state=""), user(state=""), (), None),
    ("2: before check 3", auth(state=""), user(), ("",), cs("empty string")),
    ("3: stale", auth(1300, 1300, "bbbb"), user(), ("bbbb",), cs("stale value")),
    ("3: before check 4", auth(1234, 1234, "bbbb"), user(), ("bbbb",), cs("stale value")),
    ("3: empty stale", auth(1300, 1300, ""), user(state=""), ("",), cs("stale value")),
    ("4: new state, same generation", auth(1234, 1234, "bbbb"), user(), (),
     cs("new value with no generation change")),
    ("4: new state, lower generation", auth(1000, 1000, "bbbb"), user(), (),
     cs("new value with no generation change")),
    ("4: skipped without generation", auth(None, 1235, "bbbb"), user(), (), None),
    ("5: new state, same kca", auth(1235, 1234, "bbbb"), user(), (),
     cs("new value with no keys_changed_at change")),
    ("5: skipped when stored kca absent", auth(1235, 1234, "bbbb"), user(kca=None), (), None),
    ("5: skipped when request kca absent", auth(1235, None, "bbbb"), user(kca=None), (),
     None),
    ("6: generation went back", auth(1233, 1234), user(), (), GEN),
    ("6: skipped without generation", auth(None, 1234), user(), (), None),
    ("7: kca went back", auth(1234, 1233), user(), (), KCA),
    ("8: kca missing, stored non-zero", auth(1234, None), user(), (), KCA),
    ("8: kca missing, stored zero ok", auth(1234, None), user(kca=0), (), None),
    ("8: kca missing, stored absent ok", auth(1234, None), user(kca=None), (), None),
    ("retired", auth(None, 1234), user(gen=rules.MAX_GENERATION), (), GEN),
]


@pytest.mark.parametrize("name,a,u,old,expected", CHECKS, ids=[c[0] for c in CHECKS])
def test_consistency(name: str, a: AuthData, u: UserRecord, old: tuple, expected) -> None:  # type: ignore[no-untyped-def]
    if expected is None:
        rules.check_consistency(a, u, old)
    else:
        assert fields(rules.check_consistency, a, u, old) == expected


# --- updates -----------------------------------------------------------------------------

UPDATES = [
    # (name, auth, user, (generation, kca, new_uid, changed))
    ("nothing changes", auth(), user(), (1234, 1234, False, False)),
    ("generation set in place", auth(1300, 1234), user(), (1300, 1234, False, True)),
    ("kca set in place", auth(1300, 1300), user(), (1300, 1300, False, True)),
    ("set generation from no generation", auth(1234, 1234), user(0, None),
     (1234, 1234, False, True)),
    ("set kca from no kca", auth(1234, 1234), user(1234, None), (1234, 1234, False, True)),
    ("generation unchanged w/o kca update", auth(None, 1234), user(0, 1234),
     (0, 1234, False, False)),
    ("generation follows newer kca", auth(None, 1235), user(0, 1234),
     (1235, 1235, False, True)),
    ("generation from kca initialisation", auth(None, 1234), user(0, None),
     (1234, 1234, False, True)),
    ("kca newer but below generation", auth(None, 1235), user(2000, 1234),
     (2000, 1235, False, True)),
    ("zero kca kept zero", auth(1234, None), user(1234, 0), (1234, 0, False, False)),
    ("absent kca stays absent", auth(1234, None), user(1234, None),
     (1234, None, False, False)),
    ("client state change -> new uid", auth(1235, 1235, "bbbb"), user(),
     (1235, 1235, True, True)),
    ("client state change w/o generation", auth(None, 1235, "cccc"), user(1234, 1234),
     (1235, 1235, True, True)),
]


@pytest.mark.parametrize("name,a,u,expected", UPDATES, ids=[c[0] for c in UPDATES])
def test_plan_update(name: str, a: AuthData, u: UserRecord, expected: tuple) -> None:
    up = rules.plan_update(a, u)
    assert (up.generation, up.keys_changed_at, up.new_uid, up.changed) == expected


# --- response pieces ---------------------------------------------------------------------

def test_metrics_hashes_match_syncstorage_rs_vectors() -> None:
    # extractors.rs test_valid_tokenserver_request: secret "", fxa_uid "test123".
    hashed = rules.hashed_fxa_uid("", "test123")
    assert hashed == "4d00ecae64b98dd7dc7dea68d0dd615d"
    assert rules.hashed_device_id("", hashed) == "3a41cccbdd666ebc4199f1f9d1249d44"


@pytest.mark.parametrize("kca,gen,state,expected", [
    (2345, 2345, "bbbb", "0000000002345-u7s"),  # test_fxa_kid_change
    (None, 1234, "aaaa", "0000000001234-qqo"),
    (0, 1234, "aaaa", "0000000000000-qqo"),
    (1700000000123, 1, "", "1700000000123-"),
])
def test_fxa_kid(kca: int | None, gen: int, state: str, expected: str) -> None:
    assert rules.fxa_kid(kca, gen, state) == expected


def test_token_payload_is_tokenlib_compatible() -> None:
    a = auth(1300, 1234)
    up = rules.plan_update(a, user())
    payload = rules.token_payload(node="http://h:1", uid=7, auth=a, update=up, expires=99,
                                  salt="abcdef", metrics_secret="s")
    assert payload == {
        "node": "http://h:1", "fxa_kid": "0000000001234-qqo", "fxa_uid": "uid",
        "hashed_device_id": rules.hashed_device_id("s", rules.hashed_fxa_uid("s", "uid")),
        "hashed_fxa_uid": rules.hashed_fxa_uid("s", "uid"), "expires": 99, "uid": 7,
        "tokenserver_origin": "rust", "salt": "abcdef",
    }
    secrets = tokenlib.TokenSecrets.from_master("secret")
    token = tokenlib.make_token(secrets, payload)
    assert tokenlib.parse_token(secrets, token) == payload
    raw = base64.urlsafe_b64decode(token)
    assert json.loads(raw[:-32]) == payload


def test_email_for() -> None:
    assert rules.email_for("abc", "foxden.local") == "abc@foxden.local"
