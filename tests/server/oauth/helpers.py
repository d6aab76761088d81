"""Shared helpers for the OAuth, profile and discovery tests: accounts, sessions, HAWK as
Firefox signs it, PKCE pairs and real keys_jwe values."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from server.accounts import tokens
from server.crypto import fxatokens, hawk, onepw
from tests.conftest import LiveServer

DESKTOP = "5882386c6d801776"
FENIX = "a2270f727f45f648"
IOS = "1b1a3e44c54fbb58"
OLDSYNC = "https://identity.mozilla.com/apps/oldsync"
SESSION_SCOPE = "https://identity.mozilla.com/tokens/session"
WEBCHANNEL = "urn:ietf:wg:oauth:2.0:oob:oauth-redirect-webchannel"
SYNC_SCOPE = f"{OLDSYNC} profile"


@dataclass
class Account:
    uid: str
    email: str
    session: str          # hex sessionToken, as Firefox holds it
    session_id: str
    hawk_key: bytes
    kb: bytes
    keys_changed_at: int  # ms
    verifier_set_at: int  # ms


def _insert_account(conn: Any, uid: str, email: str, now: int, kca: int, vsa: int) -> None:
    # Until server/accounts/store.py exists: the columns 0003 requires, random secrets.
    conn.execute(
        "INSERT INTO accounts (uid, email, normalized_email, auth_salt, verify_hash, "
        "wrap_wrap_kb, ka, verifier_set_at, keys_changed_at, created_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?)",
        (uid, email, email.lower(), secrets.token_bytes(32), secrets.token_bytes(32),
         secrets.token_bytes(32), secrets.token_bytes(32), vsa, kca, now))


async def create_account(server: LiveServer, email: str | None = None, *,
                         verified: bool = True, keys_changed_at: int | None = None,
                         user_agent: str = "") -> Account:
    uid = secrets.token_hex(16)
    email = email or f"{uid[:8]}@example.com"
    now = int(time.time() * 1000)
    kca = keys_changed_at or now - 1000
    vsa = kca

    def write(conn: Any) -> str:
        _insert_account(conn, uid, email, now, kca, vsa)
        return tokens.create(conn, "sessionToken", uid, now, verified=verified,
                             user_agent=user_agent)

    token = await server.db.write(write)
    creds = fxatokens.derive(bytes.fromhex(token), "sessionToken")
    return Account(uid, email, token, creds.id, creds.hawk_key, secrets.token_bytes(32),
                   kca, vsa)


async def new_session(server: LiveServer, account: Account, *, verified: bool = True,
                      user_agent: str = "") -> Account:
    now = int(time.time() * 1000)
    token = await server.db.write(lambda c: tokens.create(
        c, "sessionToken", account.uid, now, verified=verified, user_agent=user_agent))
    creds = fxatokens.derive(bytes.fromhex(token), "sessionToken")
    return Account(account.uid, account.email, token, creds.id, creds.hawk_key, account.kb,
                   account.keys_changed_at, account.verifier_set_at)


class SessionHawk(httpx.Auth):
    """HAWK with a sessionToken, as Firefox signs auth-server calls: payload hash on every
    POST (content type without parameters), none on GET; host/port of the public URL."""

    def __init__(self, account: Account, server: LiveServer, *, key: bytes | None = None,
                 ts: int | None = None) -> None:
        self.account = account
        self.settings = server.settings
        self.key = key or account.hawk_key
        self.ts = ts

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        body = request.content if request.method != "GET" else None
        request.headers["Authorization"] = hawk.sign_header(
            self.key, self.account.session_id, request.method,
            request.url.raw_path.decode("ascii"), self.settings.public_host,
            self.settings.public_port, self.ts or int(time.time()),
            base64.b64encode(secrets.token_bytes(8)).decode(),
            content_type=request.headers.get("content-type", ""), body=body)
        yield request


def bearer_session(account: Account) -> dict[str, str]:
    """PyFxA 0.9's scheme: ``Bearer fxs_<token id>``."""
    return {"Authorization": f"Bearer fxs_{account.session_id}"}


def pkce() -> tuple[str, str]:
    """(verifier, challenge) the way Firefox makes them."""
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(
        hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@dataclass
class KeysFlow:
    """Firefox's side of a sign-in: the ephemeral key pair and the JWE the page built."""

    private_key: ec.EllipticCurvePrivateKey
    keys_jwe: str
    jwk: dict[str, str]


def keys_flow(account: Account) -> KeysFlow:
    private = ec.generate_private_key(ec.SECP256R1())
    jwk = onepw.oldsync_jwk(account.kb, account.keys_changed_at)
    plaintext = onepw.scoped_keys_plaintext({OLDSYNC: jwk})
    return KeysFlow(private, onepw.build_keys_jwe(onepw.public_jwk(private.public_key()),
                                                  plaintext), jwk)


def authorization_body(client_id: str = DESKTOP, *, challenge: str, scope: str = SYNC_SCOPE,
                       keys_jwe: str | None = None, access_type: str = "offline",
                       service: str | None = "sync", **extra: Any) -> dict[str, Any]:
    """What the sign-in page posts (firefox-signin.md §2.4 step 5)."""
    body: dict[str, Any] = {
        "client_id": client_id, "state": secrets.token_urlsafe(16), "scope": scope,
        "access_type": access_type, "response_type": "code", "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if keys_jwe is not None:
        body["keys_jwe"] = keys_jwe
    if service is not None:
        body["service"] = service
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}


async def authorize(server: LiveServer, account: Account, **kw: Any) -> tuple[dict[str, Any],
                                                                             str]:
    """POST /v1/oauth/authorization; returns (response JSON, code_verifier)."""
    verifier, challenge = pkce()
    body = authorization_body(challenge=challenge, **kw)
    async with server.client(auth=SessionHawk(account, server)) as c:
        r = await c.post("/v1/oauth/authorization", json=body)
    assert r.status_code == 200, r.text
    return r.json(), verifier


async def exchange(server: LiveServer, code: str, verifier: str, client_id: str = DESKTOP,
                   account: Account | None = None, **extra: Any) -> httpx.Response:
    """The code exchange, HAWK-signed like Firefox's when ``account`` is given."""
    auth = SessionHawk(account, server) if account else None
    body = {"grant_type": "authorization_code", "code": code, "client_id": client_id,
            "code_verifier": verifier, **extra}
    async with server.client(auth=auth) as c:
        return await c.post("/v1/oauth/token", json=body)


async def credentials(server: LiveServer, account: Account, scope: str,
                      client_id: str = DESKTOP, **extra: Any) -> httpx.Response:
    body = {"client_id": client_id, "grant_type": "fxa-credentials", "scope": scope, **extra}
    async with server.client(auth=SessionHawk(account, server)) as c:
        return await c.post("/v1/oauth/token", json=body)


async def post(server: LiveServer, path: str, body: Any = None, *,
               auth: httpx.Auth | None = None, headers: dict[str, str] | None = None,
               content: bytes | None = None) -> httpx.Response:
    async with server.client(auth=auth) as c:
        if content is not None:
            return await c.post(path, content=content,
                                headers={"Content-Type": "application/json", **(headers or {})})
        return await c.post(path, json=body, headers=headers)


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def jwt_header(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


def assert_fxa_error(r: httpx.Response, status: int, errno: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["code"] == status and body["errno"] == errno, body
    assert isinstance(body["message"], str) and isinstance(body["error"], str)
    return body
