"""HAWK verification for storage (§2), checked against independent clients and RS vectors."""

from __future__ import annotations

import time
import warnings

import pytest
import tokenlib as mozilla_tokenlib

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # webob imports cgi
    import hawkauthlib
    import webob

from server.crypto import hawk, tokenlib
from server.crypto.noncecache import NonceCache
from server.storage.auth import (
    MAX_SKEW_SECONDS,
    AuthError,
    StorageAuth,
    UidMismatch,
    verify_payload,
)

SECRET = "TED KOPPEL IS A ROBOT"
HOST, PORT = "127.0.0.1", 5000


def make_auth(secret: str = SECRET, **kw: object) -> StorageAuth:
    return StorageAuth(tokenlib.TokenSecrets.from_master(secret), HOST, PORT, **kw)  # type: ignore[arg-type]


def mozilla_token(uid: int = 1, expires_in: float = 300, secret: str = SECRET) -> tuple[str, str]:
    """A token minted by Mozilla's own tokenlib, as a separate implementation."""
    data = {"uid": uid, "node": f"http://{HOST}:{PORT}", "expires": time.time() + expires_in,
            "fxa_uid": "f" * 32, "fxa_kid": "0000000000001-AAAA"}
    token = mozilla_tokenlib.make_token(data, secret=secret)
    return token, mozilla_tokenlib.get_derived_secret(token, secret=secret)


def hawkauthlib_header(token: str, key: str, method: str = "GET",
                       path: str = "/1.5/1/storage/col", *, ts: int | None = None,
                       nonce: str | None = None) -> str:
    req = webob.Request.blank(f"http://{HOST}:{PORT}{path}", method=method)
    params = {}
    if ts is not None:
        params["ts"] = str(ts)
    if nonce is not None:
        params["nonce"] = nonce
    return hawkauthlib.sign_request(req, token, key, params=params or None)


def test_accepts_tokenlib_and_hawkauthlib() -> None:
    auth = make_auth()
    token, key = mozilla_token()
    for method, path in (("GET", "/1.5/1/storage/col?full=1&newer=12.3"),
                         ("POST", "/1.5/1/storage/col?batch=MTUzNjE5ODk3NjkyMQ%3D%3D&commit=true"),
                         ("DELETE", "/1.5/1")):
        ident = auth.verify(hawkauthlib_header(token, key, method, path), method, path, 1)
        assert ident.uid == 1 and ident.token["fxa_uid"] == "f" * 32


def test_wrong_secret_method_path_host_port_fail() -> None:
    token, key = mozilla_token()
    path = "/1.5/1/storage/col"
    with pytest.raises(AuthError):
        make_auth("other secret").verify(hawkauthlib_header(token, key), "GET", path, 1)
    with pytest.raises(AuthError):
        make_auth().verify(hawkauthlib_header(token, key), "POST", path, 1)
    with pytest.raises(AuthError):
        make_auth().verify(hawkauthlib_header(token, key), "GET", path + "?x=1", 1)
    for host, port in (("localhost", PORT), (HOST, PORT + 1)):
        auth = StorageAuth(tokenlib.TokenSecrets.from_master(SECRET), host, port)
        with pytest.raises(AuthError):
            auth.verify(hawkauthlib_header(token, key), "GET", path, 1)


def test_key_is_the_ascii_of_the_derived_secret() -> None:
    token, key = mozilla_token()
    path = "/1.5/1/info/quota"
    raw_key = tokenlib.derived_secret(tokenlib.TokenSecrets.from_master(SECRET), token,
                                      mozilla_tokenlib.parse_token(token, secret=SECRET)["salt"])
    assert raw_key == key
    header = hawk.sign_header(key.encode("ascii"), token, "GET", path, HOST, PORT,
                              int(time.time()), "n1")
    assert make_auth().verify(header, "GET", path, 1).uid == 1


@pytest.mark.parametrize("header", [
    None, "", "Bearer abc", "hawk id=\"x\"", 'Hawk id="", ts="1", nonce="n", mac="m"',
    'Hawk id="AAAA", ts="1", nonce="n", mac="m"', 'Hawk ts="1", nonce="n", mac="m"',
    'Hawk id="!!!!", ts="x", nonce="n", mac="m"',
])
def test_garbage_headers_are_401(header: str | None) -> None:
    with pytest.raises(AuthError):
        make_auth().verify(header, "GET", "/1.5/1/info/quota", 1)


def test_uid_mismatch_is_separate_from_401() -> None:
    token, key = mozilla_token(uid=7)
    path = "/1.5/8/info/quota"
    with pytest.raises(UidMismatch):
        make_auth().verify(hawkauthlib_header(token, key, path=path), "GET", path, 8)


def test_expired_token_only_for_info_collections() -> None:
    token, key = mozilla_token(expires_in=-60)
    auth = make_auth()
    path = "/1.5/1/storage/col"
    with pytest.raises(AuthError):
        auth.verify(hawkauthlib_header(token, key, path=path), "GET", path, 1)
    path = "/1.5/1/info/collections"
    assert auth.verify(hawkauthlib_header(token, key, path=path), "GET", path, 1,
                       allow_expired=True).uid == 1


def test_expiry_rounds_like_rs() -> None:
    secrets_ = tokenlib.TokenSecrets.from_master(SECRET)
    now = 1_800_000_000
    for expires, ok in ((now + 0.5, True), (now + 0.49, False), (now, False), (now + 1, True)):
        token = tokenlib.make_token(secrets_, {"uid": 1, "node": "n", "expires": expires,
                                               "salt": "abc123"})
        key = tokenlib.derived_secret(secrets_, token, "abc123")
        header = hawk.sign_header(key.encode(), token, "GET", "/p", HOST, PORT, now, f"n{expires}")
        if ok:
            make_auth().verify(header, "GET", "/p", 1, now=now + 0.7)
        else:
            with pytest.raises(AuthError):
                make_auth().verify(header, "GET", "/p", 1, now=now + 0.7)


def test_replayed_nonce_is_rejected() -> None:
    auth = make_auth()
    token, key = mozilla_token()
    path = "/1.5/1/storage/col"
    header = hawkauthlib_header(token, key, path=path)
    auth.verify(header, "GET", path, 1)
    with pytest.raises(AuthError):
        auth.verify(header, "GET", path, 1)
    # Same nonce under another token is a different pair.
    other, other_key = mozilla_token()
    auth.verify(hawkauthlib_header(other, other_key, path=path,
                                   nonce=header.split('nonce="')[1].split('"')[0]),
                "GET", path, 1)


def test_info_collections_replay_is_rejected_after_the_token_expires() -> None:
    cache = NonceCache()
    auth = make_auth(info_nonces=cache)
    token, key = mozilla_token(expires_in=10)
    path = "/1.5/1/info/collections"
    now = time.time()
    header = hawkauthlib_header(token, key, path=path, ts=int(now))
    auth.verify(header, "GET", path, 1, allow_expired=True, now=now)
    # An hour later the token is long expired, but info/collections still takes it: the
    # nonce must still be remembered.
    with pytest.raises(AuthError):
        auth.verify(header, "GET", path, 1, allow_expired=True, now=now + 3600)
    assert len(cache) == 1 and len(auth.nonces) == 0  # kept apart from short-lived pairs


def test_timestamp_skew_window() -> None:
    token, key = mozilla_token(expires_in=10**9)
    path = "/1.5/1/storage/col"
    now = int(time.time())
    ok = hawkauthlib_header(token, key, path=path, ts=now - MAX_SKEW_SECONDS + 5)
    make_auth().verify(ok, "GET", path, 1, now=now)
    too_old = hawkauthlib_header(token, key, path=path, ts=now - MAX_SKEW_SECONDS - 5)
    with pytest.raises(AuthError):
        make_auth().verify(too_old, "GET", path, 1, now=now)


def test_rs_vectors() -> None:
    """syncstorage-rs web/auth.rs test fixtures (master secret "Ted Koppel is a robot")."""
    token = (
        "eyJ1aWQiOiAxLCAibm9kZSI6ICJodHRwOi8vbG9jYWxob3N0OjUwMDAiLCAiZXhwaXJlcyI6IDE4ODQ5"
        "Njg0MzkuMCwgImZ4YV91aWQiOiAiMzE5Yjk4Zjk5NjFmZjFkYmRkMDczMTNjZDZiYTkyNWEiLCAiZnhh"
        "X2tpZCI6ICJkZTY5N2FkNjZkODQ1YjI4NzNjOWQ3ZTEzYjg5NzFhZiIsICJoYXNoZWRfZnhhX3VpZCI6"
        "ICIwZThkZjVkNDEzOThhMzg5OTEzYmQ4NDAyNDM1NjQ5NTE4YWY0NjQ5M2RhMWQ0YTQzN2E0NmRjMTc4"
        "NGM1MDFhIiwgImhhc2hlZF9kZXZpY2VfaWQiOiAiMmJjYjkyZjRkNDY5OGMzZDdiMDgzYTNjNjk4YTE2"
        "Y2NkNzhiYzJhOGQyMGE5NmU0YmIxMjhkZGNlYWY0ZTBiNiIsICJzYWx0IjogIjJiMzA3YiJ9lXaC5pIO"
        "enf7qL1AWlgKFvYH63nakyniTXP-7acS5cw="
    )
    auth = StorageAuth(tokenlib.TokenSecrets.from_master("Ted Koppel is a robot"),
                       "localhost", 5000)
    ts = 1_569_608_439
    get = (f'Hawk id="{token}", ts="{ts}", nonce="h1Ch4vo=", '
           'mac="UwDpC+DSrHCSTQSfMOWlueB6kM6gHb0Hsv8eU9ZcTVs="')
    ident = auth.verify(get, "GET", "/storage/1.5/1/storage/col2", 1, now=ts)
    assert ident.token["salt"] == "2b307b"
    post = (f'Hawk id="{token}", ts="{ts}", nonce="4Rj7c+0=", '
            'mac="E7j1UjN7//mh7pYXsgGi3n0KGR+sUPpuyogDVzJWaHg="')
    path = "/storage/1.5/1/storage/col2?batch=MTUzNjE5ODk3NjkyMQ==&commit=true"
    auth.verify(post, "POST", path, 1, now=ts)
    with pytest.raises(AuthError):  # the bad_nonce case
        auth.verify(get.replace("h1Ch4vo=", "1d4mRs0="), "GET",
                    "/storage/1.5/1/storage/col2", 1, now=ts)


def test_payload_hash_checked_when_sent() -> None:
    token, key = mozilla_token()
    path = "/1.5/1/storage/col/a"
    body = b'{"payload": "x"}'
    header = hawk.sign_header(key.encode(), token, "PUT", path, HOST, PORT, int(time.time()),
                              "nh", content_type="application/json", body=body)
    ident = make_auth().verify(header, "PUT", path, 1)
    verify_payload(ident, "application/json; charset=utf-8", body)
    with pytest.raises(AuthError):
        verify_payload(ident, "application/json", body + b" ")
    # No hash sent (Firefox): nothing to compare.
    plain = make_auth().verify(hawkauthlib_header(token, key, "PUT", path), "PUT", path, 1)
    verify_payload(plain, "application/json", b"anything")
