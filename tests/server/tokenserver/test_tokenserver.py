"""GET /1.0/sync/1.5 over a real socket: every row of the §10.5 error table, checks 1-8,
the update rules, durations, bad tokens, and a HAWK request made with the result."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import jwt
import pytest
import sqlcipher3
import tokenlib as moz_tokenlib
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from server.crypto import jwt_tokens, tokenlib
from server.crypto.jwt_tokens import OLDSYNC_SCOPE
from server.tokenserver import routes, rules, store
from tests.conftest import HawkAuth, LiveServer

FXA_UID = "6d940dd41e636cc156074109b8092f96"
PATH = "/1.0/sync/1.5"


# --- helpers -----------------------------------------------------------------------------

def signer(server: LiveServer) -> jwt_tokens.Signer:
    s = server.settings
    return jwt_tokens.Signer.from_pem(s.oauth_signing_key_pem, s.oauth_key_id, s.origin)


def audience(server: LiveServer) -> str:
    return jwt_tokens.tokenserver_audience(server.settings.origin)


def access_token(server: LiveServer, *, sub: str = FXA_UID, generation: int | None = 1234,
                 scope: str = OLDSYNC_SCOPE, aud: list[str] | None = None, ttl: int = 300,
                 now: int | None = None) -> str:
    return signer(server).mint(
        sub=sub, client_id="5882386c6d801776", scope=scope,
        audience=aud if aud is not None else ["5882386c6d801776", audience(server)],
        ttl=ttl, generation=generation, now=now)


def key_id(kca: int | None, client_state: str) -> str:
    state = base64.urlsafe_b64encode(bytes.fromhex(client_state)).decode().rstrip("=")
    return f"{kca or 0:013d}-{state}"


def auth_headers(server: LiveServer, *, generation: int | None = 1234,
                 kca: int | None = 1234, client_state: str = "aaaa", sub: str = FXA_UID,
                 **extra: Any) -> dict[str, Any]:
    headers: dict[str, Any] = {
        "Authorization": "Bearer " + access_token(server, sub=sub, generation=generation),
        "X-KeyID": key_id(kca, client_state),
    }
    headers.update(extra)
    return headers


async def get(server: LiveServer, headers: dict[str, Any] | None = None,
              path: str = PATH) -> httpx.Response:
    async with server.client() as c:
        return await c.get(path, headers=headers or {})


def error(status: str, location: str = "body", name: str = "",
          description: str = "Unauthorized") -> dict[str, Any]:
    return {"status": status,
            "errors": [{"location": location, "name": name, "description": description}]}


def cs_error(reason: str) -> dict[str, Any]:
    return error("invalid-client-state", "header", "X-Client-State",
                 f"Unacceptable client-state value {reason}")


def assert_error(r: httpx.Response, code: int, body: dict[str, Any]) -> None:
    assert r.status_code == code, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == body
    assert "Traceback" not in r.text


def email(server: LiveServer, sub: str = FXA_UID) -> str:
    return f"{sub}@{rules.FXA_EMAIL_DOMAIN}"


_clock = iter(range(1_000, 10**9, 10))


async def add_user(server: LiveServer, *, generation: int = 1234, kca: int | None = 1234,
                   client_state: str = "aaaa", replaced_at: int | None = None,
                   sub: str = FXA_UID) -> int:
    def fn(conn):  # type: ignore[no-untyped-def]
        uid = store.insert_user(conn, email(server, sub), generation=generation,
                                client_state=client_state, keys_changed_at=kca,
                                created_at=next(_clock))
        if replaced_at is not None:
            store.mark_replaced(conn, [uid], replaced_at)
        return uid
    return await server.db.write(fn)


async def get_user(server: LiveServer, uid: int) -> rules.UserRecord:
    rows = await server.db.read(lambda conn: store.get_users(conn, email(server)))
    (row,) = [r for r in rows if r.uid == uid]
    return row


async def users(server: LiveServer) -> list[rules.UserRecord]:
    return await server.db.read(lambda conn: store.get_users(conn, email(server)))


def payload_of(token: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(token)[:-32])


# --- happy path --------------------------------------------------------------------------

async def test_new_user_gets_a_token(server: LiveServer) -> None:
    before = int(time.time())
    r = await get(server, auth_headers(server, generation=1700000000500, kca=1700000000123,
                                       client_state="46061d0ea8f4ed8b553869b1594248a4"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert before <= int(r.headers["x-timestamp"]) <= time.time() + 1
    body = r.json()
    assert list(body) == ["id", "key", "uid", "api_endpoint", "duration", "hashed_fxa_uid",
                          "hashalg", "node_type"]
    uid = body["uid"]
    assert isinstance(uid, int) and 1 <= uid < 10**10
    assert body["api_endpoint"] == f"{server.settings.origin}/1.5/{uid}"
    assert body["duration"] == 3600
    secret = server.settings.metrics_hash_secret
    hashed = hmac.new(secret.encode(), FXA_UID.encode(), hashlib.sha256).hexdigest()[:32]
    assert body["hashed_fxa_uid"] == hashed
    assert body["hashalg"] == "sha256" and body["node_type"] == "sqlite"

    payload = payload_of(body["id"])
    assert payload == {
        "node": server.settings.origin, "fxa_kid": "1700000000123-RgYdDqj07YtVOGmxWUJIpA",
        "fxa_uid": FXA_UID, "hashed_fxa_uid": hashed,
        "hashed_device_id": hmac.new(secret.encode(), (hashed + "none").encode(),
                                     hashlib.sha256).hexdigest()[:32],
        "expires": payload["expires"], "uid": uid, "tokenserver_origin": "rust",
        "salt": payload["salt"],
    }
    assert before + 3600 <= payload["expires"] <= time.time() + 3601
    assert len(payload["salt"]) == 6 and int(payload["salt"], 16) >= 0

    # Mozilla's own tokenlib accepts the token and derives the same key.
    master = server.settings.sync_master_secret
    assert moz_tokenlib.parse_token(body["id"], secret=master)["uid"] == uid
    assert moz_tokenlib.get_derived_secret(body["id"], secret=master) == body["key"]
    secrets = tokenlib.TokenSecrets.from_master(master)
    assert tokenlib.parse_token(secrets, body["id"]) == payload

    (row,) = await users(server)
    assert (row.uid, row.generation, row.keys_changed_at, row.client_state, row.replaced_at) \
        == (uid, 1700000000500, 1700000000123, "46061d0ea8f4ed8b553869b1594248a4", None)


async def test_token_signs_a_storage_request(server: LiveServer) -> None:
    # Needs the storage routes (server/storage); fails until they are registered.
    r = await get(server, auth_headers(server))
    assert r.status_code == 200
    body = r.json()
    auth = HawkAuth(body["id"], body["key"], server.settings)
    async with httpx.AsyncClient(timeout=30, auth=auth) as c:
        info = await c.get(body["api_endpoint"] + "/info/collections")
    assert info.status_code == 200, info.text
    assert info.json() == {}


async def test_same_user_same_uid(server: LiveServer) -> None:
    r1 = await get(server, auth_headers(server))
    r2 = await get(server, auth_headers(server))
    assert r1.json()["uid"] == r2.json()["uid"]
    assert r1.json()["id"] != r2.json()["id"]  # fresh salt and token each time
    other = await get(server, auth_headers(server, sub="f" * 32))
    assert other.json()["uid"] != r1.json()["uid"]


async def test_concurrent_first_requests_share_one_uid(server: LiveServer) -> None:
    results: list[int] = []

    async def one() -> None:
        r = await get(server, auth_headers(server))
        assert r.status_code == 200
        results.append(r.json()["uid"])

    async with trio.open_nursery() as n:
        for _ in range(6):
            n.start_soon(one)
    assert len(set(results)) == 1
    assert len(await users(server)) == 1


async def test_scheme_is_case_insensitive(server: LiveServer) -> None:
    for scheme in ("bearer", "BEARER", "BeArEr"):
        h = auth_headers(server)
        h["Authorization"] = h["Authorization"].replace("Bearer", scheme, 1)
        assert (await get(server, h)).status_code == 200


async def test_raw_pyjwt_token_accepted(server: LiveServer) -> None:
    # Minted without our jwt_tokens module: FxA's header spelling and a string aud.
    key = serialization.load_pem_private_key(server.settings.oauth_signing_key_pem, None)
    now = int(time.time())
    token = jwt.encode({"sub": FXA_UID, "aud": audience(server), "scope": OLDSYNC_SCOPE,
                        "iat": now, "exp": now + 60, "fxa-generation": 1234},
                       key, algorithm="RS256", headers={"typ": "at+JWT"})
    r = await get(server, {"Authorization": f"Bearer {token}", "X-KeyID": key_id(1234, "aaaa")})
    assert r.status_code == 200, r.text


async def test_scope_among_others(server: LiveServer) -> None:
    token = signer(server).mint(sub=FXA_UID, client_id="c", audience=[audience(server)],
                                scope=f"profile {OLDSYNC_SCOPE}", ttl=60, generation=1234)
    r = await get(server, {"Authorization": f"Bearer {token}", "X-KeyID": key_id(1234, "aaaa")})
    assert r.status_code == 200, r.text


# --- the error table, row by row ---------------------------------------------------------

async def test_no_authorization(server: LiveServer) -> None:
    assert_error(await get(server, {"X-KeyID": key_id(1234, "aaaa")}), 401, error("error"))


@pytest.mark.parametrize("value", ["Bearer", "Bearertoken", b"Bearer \xc3\xa9t\xc3\xa9",
                                   b"Bearer \xff\xfe", "Bearer\ttoken"])
async def test_malformed_authorization(server: LiveServer, value: str | bytes) -> None:
    r = await get(server, {"Authorization": value, "X-KeyID": key_id(1234, "aaaa")})
    assert_error(r, 401, error("error"))


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Hawk id=\"a\", mac=\"b\"",
                                   "Unsupported-Auth-Scheme IHACKYOU", "Bearer: x"])
async def test_scheme_not_bearer(server: LiveServer, value: str) -> None:
    r = await get(server, {"Authorization": value, "X-KeyID": key_id(1234, "aaaa")})
    assert_error(r, 401, error("error", description="Unsupported"))


async def test_missing_key_id(server: LiveServer) -> None:
    h = auth_headers(server)
    del h["X-KeyID"]
    assert_error(await get(server, h), 401,
                 error("invalid-key-id", "header", description="Missing X-KeyID header"))


async def test_non_ascii_key_id(server: LiveServer) -> None:
    # Not in the doc's table: syncstorage-rs answers an unreadable header like this.
    for value in (b"1234-qq\xc3\xa9", b"\xe2\x80\x8b", b"\xff\xff\xff\xff"):
        r = await get(server, auth_headers(server, **{"X-KeyID": value}))
        assert_error(r, 401, error("invalid-key-id", "header",
                                   description="Invalid X-KeyID header"))


@pytest.mark.parametrize("value", ["00000000", "1234-state!", "1234-notbase64", "1234-qqo=",
                                   "notanumber-qqo", "-qqo", "1234.5-qqo"])
async def test_bad_key_id_is_invalid_credentials(server: LiveServer, value: str) -> None:
    r = await get(server, auth_headers(server, **{"X-KeyID": value}))
    assert_error(r, 401, error("invalid-credentials"))


async def test_oauth_failures_are_invalid_credentials(server: LiveServer) -> None:
    now = int(time.time())
    priv = serialization.load_pem_private_key(server.settings.oauth_signing_key_pem, None)
    public = priv.public_key()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    good = {"sub": FXA_UID, "aud": [audience(server)], "scope": OLDSYNC_SCOPE,
            "iat": now, "exp": now + 300}

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    def forged(alg: str, key: bytes | None) -> str:
        head = b64(json.dumps({"alg": alg, "typ": "at+jwt"}).encode()) + "." + \
            b64(json.dumps(good).encode())
        sig = b"" if key is None else hmac.new(key, head.encode(), hashlib.sha256).digest()
        return head + "." + b64(sig)

    pem_pub = public.public_bytes(serialization.Encoding.PEM,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    cases = {
        "expired": access_token(server, now=now - 1000, ttl=10),
        "other key": jwt.encode(good, other, algorithm="RS256", headers={"typ": "at+jwt"}),
        "typ JWT": jwt.encode(good, priv, algorithm="RS256", headers={"typ": "JWT"}),
        "no typ": jwt.encode(good, priv, algorithm="RS256", headers={"typ": None}),
        "profile scope only": access_token(server, scope="profile"),
        "oldsync-like scope": access_token(server, scope=OLDSYNC_SCOPE + "/x"),
        "no scope": jwt.encode({k: v for k, v in good.items() if k != "scope"}, priv,
                               algorithm="RS256", headers={"typ": "at+jwt"}),
        "wrong audience": access_token(server, aud=["5882386c6d801776"]),
        "origin as audience": access_token(server, aud=[server.settings.origin]),
        "no audience": jwt.encode({k: v for k, v in good.items() if k != "aud"}, priv,
                                  algorithm="RS256", headers={"typ": "at+jwt"}),
        "alg none": forged("none", None),
        "HS256 with public PEM": forged("HS256", pem_pub),
        "RS512": jwt.encode(good, priv, algorithm="RS512", headers={"typ": "at+jwt"}),
        "generation not int": jwt.encode(good | {"fxa-generation": "1234"}, priv,
                                         algorithm="RS256", headers={"typ": "at+jwt"}),
        "opaque token": "a" * 64,
        "garbage": "not.a.jwt",
        "two spaces": " " + access_token(server),
    }
    for name, token in cases.items():
        r = await get(server, {"Authorization": f"Bearer {token}",
                               "X-KeyID": key_id(1234, "aaaa")})
        assert r.status_code == 401, name
        assert r.json() == error("invalid-credentials"), name
    # OAuth is checked before X-KeyID.
    r = await get(server, {"Authorization": "Bearer " + cases["expired"]})
    assert_error(r, 401, error("invalid-credentials"))
    assert await users(server) == []


async def test_client_state_checks_2_to_5(server: LiveServer) -> None:
    await add_user(server, generation=1234, kca=1234, client_state="aaaa")
    await add_user(server, generation=1000, kca=1000, client_state="bbbb", replaced_at=5)
    cases = [
        (dict(client_state=""), "empty string"),  # 2
        (dict(generation=1300, kca=1300, client_state="bbbb"), "stale value"),  # 3
        (dict(generation=1234, kca=1234, client_state="cccc"),
         "new value with no generation change"),  # 4
        (dict(generation=1300, kca=1234, client_state="cccc"),
         "new value with no keys_changed_at change"),  # 5
    ]
    for kw, reason in cases:
        assert_error(await get(server, auth_headers(server, **kw)), 401, cs_error(reason))


async def test_x_client_state_mismatch(server: LiveServer) -> None:
    await add_user(server, client_state="aaaa")
    r = await get(server, auth_headers(server, **{"X-Client-State": "bbbb"}))
    assert_error(r, 401, error("invalid-client-state"))
    r = await get(server, auth_headers(server, **{"X-Client-State": "aaaa"}))
    assert r.status_code == 200
    # An unreadable X-Client-State is ignored, like actix's to_str().ok().
    r = await get(server, auth_headers(server, **{"X-Client-State": b"\xc3\xa9"}))
    assert r.status_code == 200


@pytest.mark.parametrize("value", ["state!", "a" * 33, "aa aa"])
async def test_bad_x_client_state(server: LiveServer, value: str) -> None:
    r = await get(server, auth_headers(server, **{"X-Client-State": value}))
    assert_error(r, 400, error("error", "header", "X-Client-State",
                               "Invalid client state value"))


async def test_check_6_invalid_generation(server: LiveServer) -> None:
    await add_user(server, generation=1234)
    assert_error(await get(server, auth_headers(server, generation=1233)), 401,
                 error("invalid-generation"))


async def test_checks_1_7_8_invalid_keys_changed_at(server: LiveServer) -> None:
    await add_user(server, generation=1232, kca=1234)
    kca_error = error("invalid-keysChangedAt")
    # 1: kca moved up past the request's generation
    assert_error(await get(server, auth_headers(server, generation=1235, kca=1236)), 401,
                 kca_error)
    # 7: kca went back
    assert_error(await get(server, auth_headers(server, generation=1240, kca=1233)), 401,
                 kca_error)
    # 8: kca absent (0) though one is stored
    assert_error(await get(server, auth_headers(server, generation=1240, kca=None)), 401,
                 kca_error)


async def test_unparsable_query(server: LiveServer) -> None:
    r = await get(server, auth_headers(server), path=PATH + "?duration=10&duration=20")
    assert_error(r, 400, error("error", "url", description="invalid query params"))


async def test_new_users_disabled(make_server) -> None:  # type: ignore[no-untyped-def]
    server = await make_server(allow_new_users=False)
    r = await get(server, auth_headers(server))
    assert_error(r, 403, error("new-users-disabled", description="New users are not allowed"))
    # Known users still get tokens, including a key reset onto a new uid.
    uid = await add_user(server)
    assert (await get(server, auth_headers(server))).json()["uid"] == uid
    r = await get(server, auth_headers(server, generation=1300, kca=1300, client_state="bbbb"))
    assert r.status_code == 200 and r.json()["uid"] != uid


@pytest.mark.parametrize("path", ["/1.0/push/1.5", "/1.0/push/1.0", "/1.0/Sync/1.5"])
async def test_unsupported_application(server: LiveServer, path: str) -> None:
    assert_error(await get(server, auth_headers(server), path=path), 404,
                 error("error", "url", "application", "Unsupported application"))


@pytest.mark.parametrize("version", ["1.0", "2.0", "1.5.0"])
async def test_unsupported_version(server: LiveServer, version: str) -> None:
    assert_error(await get(server, auth_headers(server), path=f"/1.0/sync/{version}"), 404,
                 error("error", "url", version, "Unsupported application version"))


async def test_application_checked_after_auth(server: LiveServer) -> None:
    # syncstorage-rs authenticates before it looks at the application.
    assert_error(await get(server, {}, path="/1.0/push/1.5"), 401, error("error"))


async def test_unrouted_tokenserver_paths(server: LiveServer) -> None:
    for path in ("/1.0/sync", "/1.0/sync/1.5/extra", "/1.0/"):
        assert_error(await get(server, auth_headers(server), path=path), 404,
                     error("error", "url", "application", "Unsupported application"))


async def test_database_error_is_internal_error(server: LiveServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a: Any, **_k: Any) -> None:
        raise sqlcipher3.OperationalError("disk I/O error at /secret/path")

    monkeypatch.setattr(store, "issue", broken)
    r = await get(server, auth_headers(server))
    assert_error(r, 500, error("internal-error", "internal", description="Server error"))
    assert "secret" not in r.text


async def test_unexpected_error_is_internal_error(server: LiveServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(store, "issue", broken)
    assert_error(await get(server, auth_headers(server)), 500,
                 error("internal-error", "internal", description="Server error"))


async def test_database_timeout_is_elapsed(server: LiveServer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes, "DB_TIMEOUT_SECONDS", 0.2)
    async with server.db._write_lock:  # another writer holds the database
        r = await get(server, auth_headers(server))
    assert_error(r, 504, error("elapsed", description="Elapsed"))
    assert await users(server) == []


# --- consistency and update rules (after syncstorage-rs's test_authorization.py) --------

async def test_keys_changed_at_less_than_equal_to_generation(server: LiveServer) -> None:
    await add_user(server, generation=1232, kca=1234)
    r = await get(server, auth_headers(server, generation=1235, kca=1236))
    assert_error(r, 401, error("invalid-keysChangedAt"))
    for gen, kca in ((1233, 1234), (None, 1235), (1236, 1235)):
        r = await get(server, auth_headers(server, generation=gen, kca=kca))
        assert r.status_code == 200, (gen, kca, r.text)


async def test_disallow_reusing_old_client_state(server: LiveServer) -> None:
    await add_user(server, client_state="aaaa", replaced_at=1200)
    await add_user(server, client_state="bbbb")
    assert_error(await get(server, auth_headers(server, client_state="aaaa")), 401,
                 cs_error("stale value"))
    r1 = await get(server, auth_headers(server, client_state="bbbb"))
    r2 = await get(server, auth_headers(server, generation=1235, kca=1235,
                                        client_state="cccc"))
    assert r1.status_code == r2.status_code == 200
    assert r1.json()["uid"] != r2.json()["uid"]


async def test_generation_change_must_accompany_client_state_change(server: LiveServer) -> None:
    await add_user(server, generation=1234, kca=None, client_state="aaaa")
    assert_error(await get(server, auth_headers(server, client_state="bbbb")), 401,
                 cs_error("new value with no generation change"))
    r = await get(server, auth_headers(server, generation=None, kca=1235, client_state="bbbb"))
    assert r.status_code == 200
    # generation became 1235 (= the new kca) on that request
    assert_error(await get(server, auth_headers(server, generation=1235, kca=1235,
                                                client_state="cccc")),
                 401, cs_error("new value with no generation change"))
    r = await get(server, auth_headers(server, generation=1236, kca=1236, client_state="cccc"))
    assert r.status_code == 200


async def test_kca_change_must_accompany_client_state_change(server: LiveServer) -> None:
    await add_user(server, generation=1234, kca=1234, client_state="aaaa")
    assert_error(await get(server, auth_headers(server, generation=1235, kca=1234,
                                                client_state="bbbb")),
                 401, cs_error("new value with no keys_changed_at change"))
    r = await get(server, auth_headers(server, generation=1235, kca=1235, client_state="bbbb"))
    assert r.status_code == 200


async def test_generation_must_not_go_back(server: LiveServer) -> None:
    uid = await add_user(server, generation=1234)
    assert_error(await get(server, auth_headers(server, generation=1233)), 401,
                 error("invalid-generation"))
    for gen in (None, 1234, 1235):
        r = await get(server, auth_headers(server, generation=gen))
        assert r.status_code == 200 and r.json()["uid"] == uid
    assert (await get_user(server, uid)).generation == 1235  # set in place


async def test_generation_and_kca_set_in_place(server: LiveServer) -> None:
    uid = await add_user(server, generation=0, kca=None)
    r = await get(server, auth_headers(server, generation=1234, kca=1234))
    assert r.json()["uid"] == uid
    row = await get_user(server, uid)
    assert (row.generation, row.keys_changed_at) == (1234, 1234)
    r = await get(server, auth_headers(server, generation=2000, kca=1500))
    assert r.json()["uid"] == uid
    row = await get_user(server, uid)
    assert (row.generation, row.keys_changed_at, row.replaced_at) == (2000, 1500, None)
    assert len(await users(server)) == 1


async def test_set_generation_unchanged_without_kca_update(server: LiveServer) -> None:
    uid = await add_user(server, generation=0, kca=1234)
    await get(server, auth_headers(server, generation=None, kca=1234))
    assert (await get_user(server, uid)).generation == 0
    await get(server, auth_headers(server, generation=None, kca=1235))
    assert (await get_user(server, uid)).generation == 1235


async def test_set_generation_with_kca_initialization(server: LiveServer) -> None:
    uid = await add_user(server, generation=0, kca=None)
    await get(server, auth_headers(server, generation=None, kca=1234))
    assert (await get_user(server, uid)).generation == 1234


async def test_zero_generation_and_kca_are_null(server: LiveServer) -> None:
    uid = await add_user(server, generation=1234, kca=None)
    assert (await get(server, auth_headers(server, generation=0, kca=None))).status_code == 200
    row = await get_user(server, uid)
    assert (row.generation, row.keys_changed_at) == (1234, None)


async def test_fxa_kid_change(server: LiveServer) -> None:
    await add_user(server, generation=1234, kca=None, client_state="aaaa")
    r = await get(server, auth_headers(server))
    token0 = payload_of(r.json()["id"])
    assert token0["fxa_kid"] == "0000000001234-qqo"
    kca_error = error("invalid-keysChangedAt")
    assert_error(await get(server, auth_headers(server, kca=1233)), 401, kca_error)
    assert_error(await get(server, auth_headers(server, kca=2345, client_state="bbbb")), 401,
                 kca_error)
    assert (await get(server, auth_headers(server))).status_code == 200
    r = await get(server, auth_headers(server, generation=2345, kca=2345, client_state="bbbb"))
    token = payload_of(r.json()["id"])
    assert token["fxa_kid"] == "0000000002345-u7s"
    assert token["uid"] != token0["uid"] and token["node"] == token0["node"]


async def test_client_state_change_retires_old_uid(server: LiveServer) -> None:
    uid0 = await add_user(server, generation=0, kca=None, client_state="")
    seen = {uid0}
    r = await get(server, auth_headers(server, generation=1234, kca=1234, client_state="bbbb"))
    uid1 = r.json()["uid"]
    assert uid1 not in seen and r.json()["api_endpoint"].endswith(f"/1.5/{uid1}")
    row = await get_user(server, uid1)
    assert (row.generation, row.keys_changed_at, row.client_state) == (1234, 1234, "bbbb")
    assert (await get_user(server, uid0)).replaced_at == row.created_at
    seen.add(uid1)
    r = await get(server, auth_headers(server, generation=None, kca=1235, client_state="cccc"))
    uid2 = r.json()["uid"]
    assert uid2 not in seen
    row = await get_user(server, uid2)
    assert (row.generation, row.keys_changed_at, row.client_state) == (1235, 1235, "cccc")
    assert (await get_user(server, uid1)).replaced_at is not None
    assert_error(await get(server, auth_headers(server, generation=None, kca=1235,
                                                client_state="dddd")),
                 401, cs_error("new value with no keys_changed_at change"))
    for old in ("bbbb", ""):
        r = await get(server, auth_headers(server, generation=1236, kca=1236, client_state=old))
        assert_error(r, 401, cs_error("empty string" if old == "" else "stale value"))
    assert (await get(server, auth_headers(server, generation=1235, kca=1235,
                                           client_state="cccc"))).json()["uid"] == uid2


async def test_kid_change_during_gradual_rollout(server: LiveServer) -> None:
    uid = await add_user(server, generation=1234, kca=None, client_state="aaaa")
    r = await get(server, auth_headers(server, generation=1234, kca=1200))
    assert r.json()["uid"] == uid
    row = await get_user(server, uid)
    assert (row.generation, row.keys_changed_at) == (1234, 1200)
    uid2 = await add_user(server, generation=2345, kca=1200, client_state="bbbb")
    r = await get(server, auth_headers(server, generation=2345, kca=2345, client_state="bbbb"))
    assert r.status_code == 200 and r.json()["uid"] == uid2


async def test_replaced_current_record_gets_new_uid(server: LiveServer) -> None:
    # A current row marked replaced with no successor (a race) is re-issued with its state.
    uid = await add_user(server, generation=1234, kca=1234, client_state="aaaa",
                         replaced_at=5)
    r = await get(server, auth_headers(server))
    assert r.status_code == 200 and r.json()["uid"] != uid
    row = await get_user(server, r.json()["uid"])
    assert (row.generation, row.keys_changed_at, row.client_state) == (1234, 1234, "aaaa")


async def test_stale_rows_marked_replaced(server: LiveServer) -> None:
    old = await add_user(server, generation=1000, client_state="aaaa")
    cur = await add_user(server, generation=1234, client_state="bbbb")
    r = await get(server, auth_headers(server, client_state="bbbb"))
    assert r.json()["uid"] == cur
    assert (await get_user(server, old)).replaced_at == (await get_user(server, cur)).created_at


async def test_rejection_rolls_back(server: LiveServer) -> None:
    old = await add_user(server, generation=1000, client_state="aaaa")
    await add_user(server, generation=1234, client_state="bbbb")
    assert (await get(server, auth_headers(server, generation=1, client_state="bbbb"))
            ).status_code == 401
    assert (await get_user(server, old)).replaced_at is None


# --- durations ---------------------------------------------------------------------------

@pytest.mark.parametrize("query,expected", [
    ("?duration=12", 12), ("?duration=4000", 3600), ("?duration=lolwut", 3600),
    ("?duration=-1", 3600), ("?duration=", 3600), ("?duration=3600", 3600),
    ("?v=1.155.0", 3600),
])
async def test_duration(server: LiveServer, query: str, expected: int) -> None:
    before = int(time.time())
    r = await get(server, auth_headers(server), path=PATH + query)
    assert r.status_code == 200 and r.json()["duration"] == expected
    assert before + expected <= payload_of(r.json()["id"])["expires"] <= time.time() + expected


async def test_duration_capped_by_setting(make_server) -> None:  # type: ignore[no-untyped-def]
    server = await make_server(token_duration=300)
    assert (await get(server, auth_headers(server))).json()["duration"] == 300
    r = await get(server, auth_headers(server), path=PATH + "?duration=301")
    assert r.json()["duration"] == 300


# --- retirement (account deletion) -------------------------------------------------------

async def test_retire_user(server: LiveServer) -> None:
    uid1 = (await get(server, auth_headers(server))).json()["uid"]
    uid2 = (await get(server, auth_headers(server, generation=1300, kca=1300,
                                           client_state="bbbb"))).json()["uid"]
    addr = email(server)
    assert await server.db.read(lambda c: store.current_uid(c, addr)) == uid2
    assert await server.db.read(lambda c: store.current_uid(c, "nobody@x")) is None
    retired = await server.db.write(lambda c: store.retire_user(c, addr, now_ms=99))
    assert retired == sorted([uid1, uid2])
    assert await server.db.read(lambda c: store.current_uid(c, addr)) is None
    assert await server.db.read(lambda c: store.all_uids(c, addr)) == retired
    for gen in (1300, None, 2000):
        r = await get(server, auth_headers(server, generation=gen, kca=1300,
                                           client_state="bbbb"))
        assert_error(r, 401, error("invalid-generation"))
    assert sorted(r.uid for r in await users(server)) == retired
