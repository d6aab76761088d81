"""Conformance: HAWK + token authentication on storage routes (spec §2, §3, §9).

Tokens come from Mozilla's ``tokenlib`` and requests are signed with Mozilla's
``hawkauthlib`` (plus this suite's own signer), never with Foxden's crypto modules.
Foxden divergences tested here: HAWK host/port come from the public URL, a nonce
cache rejects replays, and a ``hash`` attribute is checked against the body.
"""

from __future__ import annotations

import base64
import json
import time

import hawkauthlib
import tokenlib
import webob

from .conformance_helpers import (
    Signer,
    assert_weave_error,
    hdr_ts,
    jl,
    mint,
    payload_hash,
    raw_request,
    raw_token,
    real_uid,
    shared_server_fixture,
)

BASE_UID = 31337
server = shared_server_fixture  # one live server per session, private uids per test


def moz_sign(server, token, key, method, target, *, host=None, port=None, params=None):
    """Authorization header from hawkauthlib over a webob request, like Mozilla's suite."""
    host = host or server.settings.public_host
    port = port or server.settings.public_port
    req = webob.Request.blank(target, method=method, headers={"Host": f"{host}:{port}"})
    return hawkauthlib.sign_request(req, token, key, params=params)


def moz_token(server, uid=None, *, expires_in=300.0, secret=None, **extra):
    uid = real_uid(server, BASE_UID) if uid is None else uid
    data = {"uid": uid, "node": server.url, "expires": time.time() + expires_in, **extra}
    secret = secret or server.settings.sync_master_secret
    token = tokenlib.make_token(data, secret=secret)
    return token, tokenlib.get_derived_secret(token, secret=secret)


async def moz_send(server, method, target, *, token=None, key=None, content=None,
                   content_type=None, **sign_kw):
    if token is None:
        token, key = moz_token(server)
    headers = {"Authorization": moz_sign(server, token, key, method, target, **sign_kw)}
    if content_type:
        headers["Content-Type"] = content_type
    return await raw_request(server, method, target, content=content, headers=headers)


# ------------------------------------------------------------------ interop: Mozilla's libs


async def test_tokenlib_token_and_hawkauthlib_signature_accepted(server):
    UID = real_uid(server, BASE_UID)
    base = f"/1.5/{UID}"
    r = await moz_send(server, "GET", base + "/info/collections")
    assert r.status_code == 200, r.text
    assert jl(r) == {}

    body = json.dumps({"payload": "hello"}).encode()
    r = await moz_send(server, "PUT", base + "/storage/col/one", content=body,
                       content_type="application/json")
    assert r.status_code == 200, r.text
    put_ts = hdr_ts(r)

    body = json.dumps([{"id": "two", "payload": "there"}]).encode()
    r = await moz_send(server, "POST", base + "/storage/col", content=body,
                       content_type="application/json")
    assert r.status_code == 200, r.text
    assert jl(r)["success"] == ["two"]

    r = await moz_send(server, "GET", base + "/storage/col/one")
    assert r.status_code == 200
    assert jl(r)["payload"] == "hello"
    assert jl(r)["modified"] == put_ts


async def test_hawkauthlib_signature_over_percent_encoded_query(server):
    UID = real_uid(server, BASE_UID)
    base = f"/1.5/{UID}"
    body = json.dumps([{"id": "a", "payload": "1"}, {"id": "b", "payload": "2"},
                       {"id": "c", "payload": "3"}]).encode()
    r = await moz_send(server, "POST", base + "/storage/col", content=body,
                       content_type="application/json")
    assert r.status_code == 200
    r = await moz_send(server, "GET", base + "/storage/col?ids=a%2Cc&sort=oldest")
    assert r.status_code == 200, r.text
    assert sorted(jl(r)) == ["a", "c"]


async def test_tokens_with_all_optional_fields_accepted(server):
    UID = real_uid(server, BASE_UID)
    token, key = moz_token(server, fxa_uid="f" * 32, fxa_kid="0000000001234-abcd",
                           hashed_fxa_uid="a" * 32, hashed_device_id="b" * 32,
                           tokenserver_origin="rust")
    r = await moz_send(server, "GET", f"/1.5/{UID}/info/collections", token=token, key=key)
    assert r.status_code == 200, r.text


async def test_compact_token_layout_and_integer_expires_accepted(server):
    UID = real_uid(server, BASE_UID)
    secret = server.settings.sync_master_secret
    payload = json.dumps({"uid": UID, "node": server.url, "expires": int(time.time()) + 300,
                          "salt": "a1b2c3"}, separators=(",", ":")).encode()
    token, key = raw_token(secret, payload)
    r = await Signer(server, UID, token, key).send("GET", "/info/collections")
    assert r.status_code == 200, r.text


# ------------------------------------------------------------------ rejections → 401 / 0


async def test_token_from_wrong_master_secret_rejected(server):
    UID = real_uid(server, BASE_UID)
    token, key = moz_token(server, secret="not the master secret")
    r = await moz_send(server, "GET", f"/1.5/{UID}/info/collections", token=token, key=key)
    assert_weave_error(r, 401, 0)
    hdr_ts(r, "X-Weave-Timestamp")


async def test_right_token_wrong_key_rejected(server):
    UID = real_uid(server, BASE_UID)
    token, _ = moz_token(server)
    other = base64.urlsafe_b64encode(b"k" * 32).decode()
    r = await moz_send(server, "GET", f"/1.5/{UID}/info/collections", token=token, key=other)
    assert_weave_error(r, 401, 0)


async def test_tampered_mac_rejected(server):
    UID = real_uid(server, BASE_UID)
    token, key = moz_token(server)
    target = f"/1.5/{UID}/info/collections"
    header = moz_sign(server, token, key, "GET", target)
    mac = header.split('mac="', 1)[1].split('"', 1)[0]
    flipped = ("A" if mac[0] != "A" else "B") + mac[1:]
    bad = header.replace(mac, flipped)
    r = await raw_request(server, "GET", target, headers={"Authorization": bad})
    assert_weave_error(r, 401, 0)


async def test_tampered_token_signature_rejected(server):
    UID = real_uid(server, BASE_UID)
    token, key = moz_token(server)
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[-1] ^= 0x01
    forged = base64.urlsafe_b64encode(bytes(raw)).decode()
    r = await moz_send(server, "GET", f"/1.5/{UID}/info/collections", token=forged, key=key)
    assert_weave_error(r, 401, 0)


async def test_tampered_token_payload_rejected(server):
    UID = real_uid(server, BASE_UID)
    # Same signature, different uid: the HMAC over the payload no longer matches.
    token, key = moz_token(server)
    raw = base64.urlsafe_b64decode(token)
    body, sig = raw[:-32], raw[-32:]
    forged_body = body.replace(f'"uid": {UID}'.encode(), f'"uid": {UID + 1}'.encode())
    assert forged_body != body
    forged = base64.urlsafe_b64encode(forged_body + sig).decode()
    r = await moz_send(server, "GET", f"/1.5/{UID + 1}/info/collections",
                       token=forged, key=key)
    assert_weave_error(r, 401, 0)


async def test_wrong_host_in_signature_rejected(server):
    UID = real_uid(server, BASE_UID)
    r = await moz_send(server, "GET", f"/1.5/{UID}/info/collections", host="evil.example")
    assert_weave_error(r, 401, 0)


async def test_wrong_port_in_signature_rejected(server):
    UID = real_uid(server, BASE_UID)
    port = server.settings.public_port + 1
    r = await moz_send(server, "GET", f"/1.5/{UID}/info/collections", port=port)
    assert_weave_error(r, 401, 0)


async def test_host_headers_are_not_trusted_for_hawk(server):
    UID = real_uid(server, BASE_UID)
    # DIVERGENCE (Foxden): the MAC's host/port come from the public URL, not the request.
    s = Signer(server, UID)
    spoof = {"Host": "evil.example:8443"}
    r = await s.send("GET", "/info/collections", headers=spoof, host="evil.example", port=8443)
    assert_weave_error(r, 401, 0)
    r = await s.send("GET", "/info/collections", headers={"X-Forwarded-Host": "evil.example",
                                                           "X-Forwarded-Proto": "https"},
                     host="evil.example", port=443)
    assert_weave_error(r, 401, 0)
    # Signed for the public origin: accepted whatever the Host header says.
    r = await s.send("GET", "/info/collections", headers=spoof)
    assert r.status_code == 200, r.text


async def test_replayed_nonce_rejected(server):
    UID = real_uid(server, BASE_UID)
    # DIVERGENCE (Foxden): a nonce cache; syncstorage-rs would accept the replay.
    token, key = moz_token(server)
    target = f"/1.5/{UID}/info/collections"
    header = moz_sign(server, token, key, "GET", target)
    r1 = await raw_request(server, "GET", target, headers={"Authorization": header})
    assert r1.status_code == 200, r1.text
    r2 = await raw_request(server, "GET", target, headers={"Authorization": header})
    assert_weave_error(r2, 401, 0)


async def test_replayed_write_is_not_applied(server):
    UID = real_uid(server, BASE_UID)
    s = Signer(server, UID)
    body = json.dumps({"payload": "first"}).encode()
    target = f"/1.5/{UID}/storage/col/x"
    header = s.header("PUT", target, nonce="fixed-nonce-1")
    hdrs = {"Authorization": header, "Content-Type": "application/json"}
    r = await raw_request(server, "PUT", target, content=body, headers=hdrs)
    assert r.status_code == 200
    await s.send("PUT", "/storage/col/x", content=json.dumps({"payload": "second"}).encode(),
                 content_type="application/json")
    r = await raw_request(server, "PUT", target, content=body, headers=hdrs)
    assert_weave_error(r, 401, 0)
    r = await s.send("GET", "/storage/col/x")
    assert jl(r)["payload"] == "second"


async def test_same_nonce_under_different_tokens_is_not_a_replay(server):
    UID = real_uid(server, BASE_UID)
    a = Signer(server, UID)
    b = Signer(server, UID)
    r = await a.send("GET", "/info/collections", nonce="shared-nonce")
    assert r.status_code == 200
    r = await b.send("GET", "/info/collections", nonce="shared-nonce")
    assert r.status_code == 200, r.text


async def test_payload_hash_checked_when_present(server):
    UID = real_uid(server, BASE_UID)
    s = Signer(server, UID)
    body = json.dumps({"payload": "hashed"}).encode()
    r = await s.send("PUT", "/storage/col/h", content=body, content_type="application/json",
                     with_hash=True)
    assert r.status_code == 200, r.text
    # The MAC covers the hash attribute but the body was swapped: rejected, not written.
    good_hash = payload_hash("application/json", body)
    evil = json.dumps({"payload": "evil"}).encode()
    r = await s.send("PUT", "/storage/col/h", content=evil, content_type="application/json",
                     hash_=good_hash)
    assert_weave_error(r, 401, 0)
    r = await s.send("GET", "/storage/col/h")
    assert jl(r)["payload"] == "hashed"
    # hawkauthlib-signed request carrying a correct hash is fine too.
    token, key = moz_token(server)
    body2 = json.dumps([{"id": "p", "payload": "q"}]).encode()
    r = await moz_send(server, "POST", f"/1.5/{UID}/storage/col", token=token, key=key,
                       content=body2, content_type="application/json",
                       params={"hash": payload_hash("application/json", body2)})
    assert r.status_code == 200, r.text


async def test_payload_hash_ignores_content_type_parameters(server):
    UID = real_uid(server, BASE_UID)
    s = Signer(server, UID)
    body = json.dumps({"payload": "cs"}).encode()
    r = await s.send("PUT", "/storage/col/cs", content=body,
                     content_type="application/json; charset=utf-8", with_hash=True)
    assert r.status_code == 200, r.text


async def test_ext_attribute_is_covered_by_the_mac(server):
    UID = real_uid(server, BASE_UID)
    s = Signer(server, UID)
    r = await s.send("GET", "/info/collections", ext="some-app-data")
    assert r.status_code == 200, r.text
    header = s.header("GET", f"/1.5/{UID}/info/collections", ext="some-app-data")
    bad = header.replace('ext="some-app-data"', 'ext="other-app-data"')
    r = await raw_request(server, "GET", f"/1.5/{UID}/info/collections",
                          headers={"Authorization": bad})
    assert_weave_error(r, 401, 0)


async def test_request_target_is_signed_raw(server):
    UID = real_uid(server, BASE_UID)
    s = Signer(server, UID)
    # Sent with %2C but signed over a decoded comma: the raw target differs → 401.
    r = await s.send("GET", "/storage/col?ids=a%2Cb", sign_target=f"/1.5/{UID}/storage/col?ids=a,b")
    assert_weave_error(r, 401, 0)
    r = await s.send("GET", "/storage/col?ids=a%2Cb")
    assert r.status_code == 200, r.text
    # The query string is part of the MAC.
    r = await s.send("GET", "/storage/col?full=1", sign_target=f"/1.5/{UID}/storage/col")
    assert_weave_error(r, 401, 0)


async def test_method_is_part_of_the_mac(server):
    UID = real_uid(server, BASE_UID)
    s = Signer(server, UID)
    target = f"/1.5/{UID}/storage/col"
    header = s.header("GET", target)
    r = await raw_request(server, "DELETE", target, headers={"Authorization": header})
    assert_weave_error(r, 401, 0)


async def test_timestamp_skew_within_52_weeks_accepted(server):
    UID = real_uid(server, BASE_UID)
    s = Signer(server, UID)
    r = await s.send("GET", "/info/collections", ts=int(time.time()) - 86_400)
    assert r.status_code == 200, r.text
    r = await s.send("GET", "/info/collections", ts=int(time.time()) + 86_400)
    assert r.status_code == 200, r.text
    r = await s.send("GET", "/info/collections", ts=int(time.time()) - 54 * 7 * 86_400)
    assert_weave_error(r, 401, 0)


async def test_missing_or_malformed_authorization_rejected(server):
    UID = real_uid(server, BASE_UID)
    token, key = moz_token(server)
    target = f"/1.5/{UID}/info/collections"
    good = moz_sign(server, token, key, "GET", target)
    variants = [
        None,
        "",
        "Bearer abcdef",
        "hawk" + good[4:],          # scheme is case-sensitive
        "Hawk",
        "Hawk garbage",
        good.replace('nonce="', 'nonse="'),
        ", ".join(p for p in good.split(", ") if not p.startswith("mac=")),
        ", ".join(p for p in good.split(", ") if not p.startswith("ts=")),
        good.replace(f'id="{token}"', 'id="!!!not-base64!!!"'),
        good.replace(f'id="{token}"', 'id="' + base64.urlsafe_b64encode(b"x" * 32).decode()
                     + '"'),
    ]
    for value in variants:
        headers = {} if value is None else {"Authorization": value}
        r = await raw_request(server, "GET", target, headers=headers)
        assert_weave_error(r, 401, 0)
        hdr_ts(r, "X-Weave-Timestamp")


async def test_token_payload_must_carry_required_fields(server):
    UID = real_uid(server, BASE_UID)
    secret = server.settings.sync_master_secret
    now = time.time() + 300
    full = {"uid": UID, "node": server.url, "expires": now, "salt": "abc123"}
    cases = [
        {k: v for k, v in full.items() if k != "node"},
        {k: v for k, v in full.items() if k != "uid"},
        {k: v for k, v in full.items() if k != "expires"},
        {k: v for k, v in full.items() if k != "salt"},
        {**full, "uid": str(UID)},
        {**full, "expires": "soon"},
    ]
    for payload in cases:
        token, key = raw_token(secret, payload)
        r = await Signer(server, UID, token, key or "a2V5").send("GET", "/info/collections")
        assert_weave_error(r, 401, 0)
    token, key = raw_token(secret, b"this is not json")
    r = await Signer(server, UID, token, "a2V5").send("GET", "/info/collections")
    assert_weave_error(r, 401, 0)
    token, key = raw_token(secret, full)
    r = await Signer(server, UID, token, key).send("GET", "/info/collections")
    assert r.status_code == 200, r.text


async def test_node_is_not_checked(server):
    UID = real_uid(server, BASE_UID)
    token, key = mint(server.settings.sync_master_secret, UID, node="https://elsewhere.example")
    r = await Signer(server, UID, token, key).send("GET", "/info/collections")
    assert r.status_code == 200, r.text


async def test_expired_token_only_allowed_on_info_collections(server):
    UID = real_uid(server, BASE_UID)
    s = Signer(server, UID)
    body = json.dumps([{"id": "00", "payload": "xxx"}, {"id": "01", "payload": "xxx"}])
    r = await s.send("POST", "/storage/col1", content=body.encode(),
                     content_type="application/json")
    assert r.status_code == 200
    written = hdr_ts(r)

    old = Signer(server, UID, expires_in=-60)
    r = await old.send("GET", "/info/collections")
    assert r.status_code == 200, r.text
    assert jl(r) == {"col1": written}
    for method, rest in [("GET", "/storage/col1"), ("GET", "/info/collection_counts"),
                         ("GET", "/info/quota"), ("GET", "/storage/col1/00"),
                         ("DELETE", "/storage/col1")]:
        r = await old.send(method, rest)
        assert_weave_error(r, 401, 0)
    r = await old.send("POST", "/storage/col1", content=b"[]", content_type="application/json")
    assert_weave_error(r, 401, 0)
    # Nothing was deleted by the rejected DELETE.
    r = await s.send("GET", "/info/collection_counts")
    assert jl(r) == {"col1": 2}


async def test_expired_token_via_tokenlib_on_info_collections(server):
    UID = real_uid(server, BASE_UID)
    token, key = moz_token(server, expires_in=-60)
    r = await moz_send(server, "GET", f"/1.5/{UID}/info/collections", token=token, key=key)
    assert r.status_code == 200, r.text
    r = await moz_send(server, "GET", f"/1.5/{UID}/storage/x", token=token, key=key)
    assert_weave_error(r, 401, 0)


async def test_url_uid_must_match_token_uid(server):
    UID = real_uid(server, BASE_UID)
    token, key = moz_token(server, uid=UID)
    for method, rest in [("GET", "/info/collections"), ("GET", "/storage/col"),
                         ("DELETE", "/storage")]:
        r = await moz_send(server, method, f"/1.5/{UID + 1}{rest}", token=token, key=key)
        assert_weave_error(r, 400, 0)
        hdr_ts(r, "X-Weave-Timestamp")


async def test_unknown_uid_is_served_on_first_use(server):
    # §2 trust model: a token that verifies is the whole authorization.
    for uid in (1, 99999, 9_999_999_999):
        s = Signer(server, uid)
        r = await s.send("GET", "/info/collections")
        assert r.status_code == 200, r.text
        assert jl(r) == {}
        r = await s.send("PUT", "/storage/col/a", content=b'{"payload": "p"}',
                         content_type="application/json")
        assert r.status_code == 200, r.text


async def test_users_are_isolated(server):
    a, b = Signer(server, 1001), Signer(server, 1002)
    await a.send("PUT", "/storage/col/a", content=b'{"payload": "mine"}',
                 content_type="application/json")
    r = await b.send("GET", "/storage/col/a")
    assert_weave_error(r, 404, 0)
    r = await b.send("GET", "/info/collections")
    assert jl(r) == {}
    await b.send("DELETE", "/storage")
    r = await a.send("GET", "/storage/col/a")
    assert jl(r)["payload"] == "mine"


async def test_info_configuration_needs_no_auth(server):
    UID = real_uid(server, BASE_UID)
    target = f"/1.5/{UID}/info/configuration"
    r = await raw_request(server, "GET", target)
    assert r.status_code == 200, r.text
    r = await raw_request(server, "GET", target, headers={"Authorization": "Hawk garbage"})
    assert r.status_code == 200, r.text


async def test_fixture_client_signing_like_firefox_is_accepted(server):
    UID = real_uid(server, BASE_UID)
    async with server.storage_client(UID) as c:
        r = await c.put("/storage/col/a", json={"payload": "p"})
        assert r.status_code == 200, r.text
        r = await c.get("/storage/col", params={"ids": "a,b", "full": ""})
        assert r.status_code == 200
        assert [i["id"] for i in jl(r)] == ["a"]
