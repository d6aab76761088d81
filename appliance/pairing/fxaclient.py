"""A small FxA client for the pairing authority: it signs in, derives the Sync key and asks
the auth server for the phone's authorization code — as desktop Firefox does (pairing.md
§5.1-5.3, firefox-signin.md §2.4, §3.3, §3.5, §5), over the public HTTP API only.

One pairing = :meth:`FxaClient.authorize_pairing`:

1. ``POST /v1/account/credentials/status`` → key stretching v1 or v2 (+ clientSalt);
2. ``POST /v1/account/login?keys=true`` with authPW → sessionToken + keyFetchToken
   (errno 120 "incorrect email case": retried once with the canonical address, as FxA's
   clients do);
3. ``GET /v1/account/keys`` (HAWK, keyFetchToken) → bundle → wrapKB → kB = wrapKB ⊕ unwrapBKey;
4. ``POST /v1/account/scoped-key-data`` (HAWK, session) with the *phone's* client_id/scope;
5. keys_jwe = the oldsync JWK encrypted to the phone's ``keys_jwk`` (server/crypto/onepw.py);
6. ``POST /v1/oauth/authorization`` (HAWK, session) → ``{code, state, redirect, scope}``.

The returned :class:`PairingGrant` holds the (temporary) session.  It must outlive the code:
the server deletes a code with its authorizing session (oauth_codes.session_id ON DELETE
CASCADE) and copies the session's verification to the phone's new session at the exchange.
So :meth:`PairingGrant.wait_redeemed` watches ``/v1/account/attached_clients`` for the
phone's new refresh token, and :meth:`PairingGrant.release` destroys the session
(``POST /v1/session/destroy``) — which also revokes a code nobody redeemed.

HAWK is signed with the host and port of the *public* URL (the server verifies against it),
even when ``connect_url`` reaches the server another way (e.g. loopback).

Never logged or put in an exception message: the password, authPW, unwrapBKey, kB, tokens,
the code, keys_jwe.  kB exists only inside ``authorize_pairing``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import trio

from server.crypto import fxatokens, hawk, onepw

__all__ = [
    "AuthorizationResult", "FxaClient", "FxaClientError", "FxaServerError", "IncorrectEmailCase",
    "IncorrectPassword",
    "PairingGrant", "PhoneAuthorization", "Session", "TooManyAttempts", "UnknownAccount",
]

OLDSYNC = onepw.OLDSYNC_SCOPE
REQUEST_TIMEOUT = 30.0
RELEASE_TIMEOUT = 10.0
POLL_INTERVAL = 1.0
USER_AGENT = "Foxden pairing authority"

# FxA errnos this client acts on (fxa-auth-server lib/error.js).
ERRNO_UNKNOWN_ACCOUNT = 102
ERRNO_INCORRECT_PASSWORD = 103
ERRNO_INVALID_TOKEN = 110
ERRNO_INVALID_TIMESTAMP = 111
ERRNO_THROTTLED = 114
ERRNO_INCORRECT_EMAIL_CASE = 120

_CODE = re.compile(r"^[0-9a-f]{64}$")


class FxaClientError(Exception):
    """Signing in or authorizing failed; the message is safe to show (no secrets)."""


class FxaServerError(FxaClientError):
    def __init__(self, status: int, errno: int | None, message: str) -> None:
        super().__init__(f"auth server: {message} (HTTP {status}, errno {errno})")
        self.status = status
        self.errno = errno


class IncorrectPassword(FxaServerError):
    pass


class IncorrectEmailCase(IncorrectPassword):
    """The address is spelled differently from the stored one (v1 salts include it)."""

    def __init__(self, status: int, errno: int | None, canonical_email: object) -> None:
        super().__init__(status, errno, "incorrect email case")
        self.canonical_email = canonical_email if isinstance(canonical_email, str) else None


class UnknownAccount(FxaServerError):
    pass


class TooManyAttempts(FxaServerError):
    def __init__(self, status: int, errno: int | None, message: str,
                 retry_after: int | None) -> None:
        super().__init__(status, errno, message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class PhoneAuthorization:
    """What the phone asked for in ``pair:supp:request`` (validated by the authority)."""

    client_id: str
    scope: tuple[str, ...]
    state: str
    code_challenge: str
    keys_jwk: Mapping[str, Any]   # the phone's ephemeral P-256 public key


@dataclass(frozen=True, slots=True)
class AuthorizationResult:
    """``/v1/oauth/authorization``'s answer, relayed verbatim as ``pair:auth:authorize``."""

    code: str
    state: str
    redirect: str
    scope: str

    def __repr__(self) -> str:  # the code is a credential: keep it out of reprs and logs
        return f"AuthorizationResult(code=<hidden>, scope={self.scope!r})"

    def as_message_data(self) -> dict[str, str]:
        return {"code": self.code, "state": self.state, "redirect": self.redirect,
                "scope": self.scope}


@dataclass(slots=True)
class Session:
    uid: str
    credentials: fxatokens.TokenCredentials

    def __repr__(self) -> str:
        return f"Session(uid={self.uid!r})"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class FxaClient:
    """HTTP to the auth API of one Foxden; one instance may serve several pairings."""

    def __init__(self, public_url: str, *, connect_url: str | None = None,
                 ssl_context: ssl.SSLContext | None = None, user_agent: str = USER_AGENT,
                 timeout: float = REQUEST_TIMEOUT,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {public_url!r}")
        self.public_url = public_url.rstrip("/")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._base = (connect_url or public_url).rstrip("/")
        self._verify: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._user_agent = user_agent
        self._timeout = timeout
        self._transport = transport
        self._clock_offset = 0  # seconds, learned from errno 111's serverTime

    # --- plumbing ------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        # trust_env=False: the appliance talks to itself; a desktop proxy must not see this.
        return httpx.AsyncClient(base_url=self._base, verify=self._verify, timeout=self._timeout,
                                 trust_env=False, transport=self._transport,
                                 headers={"User-Agent": self._user_agent})

    def _sign(self, request: httpx.Request, creds: fxatokens.TokenCredentials) -> None:
        body = request.content if request.method != "GET" else None
        request.headers["Authorization"] = hawk.sign_header(
            creds.hawk_key, creds.id, request.method, request.url.raw_path.decode("ascii"),
            self._host, self._port, int(time.time()) + self._clock_offset,
            _b64(secrets.token_bytes(8)),
            content_type=request.headers.get("content-type", ""), body=body)

    async def _call(self, method: str, path: str, *, body: Any = None,
                    creds: fxatokens.TokenCredentials | None = None) -> Any:
        for attempt in (1, 2):
            async with self._client() as client:
                content = None if body is None else json.dumps(body).encode("utf-8")
                headers = {"Content-Type": "application/json"} if content is not None else {}
                request = client.build_request(method, path, content=content, headers=headers)
                if creds is not None:
                    self._sign(request, creds)
                try:
                    response = await client.send(request)
                except httpx.HTTPError as exc:
                    raise FxaClientError(
                        f"cannot reach the auth server: {type(exc).__name__}") from None
            data = _json(response)
            if response.status_code == 200:
                return data
            errno = data.get("errno") if isinstance(data, dict) else None
            if (attempt == 1 and creds is not None and errno == ERRNO_INVALID_TIMESTAMP
                    and isinstance(data.get("serverTime"), int)):
                # Firefox resyncs its HAWK clock from the server and retries once.
                self._clock_offset = data["serverTime"] - int(time.time())
                continue
            raise _error(response.status_code, data)
        raise AssertionError("unreachable")

    # --- the API calls ---------------------------------------------------------------------

    async def key_stretch(self, email: str) -> tuple[int, str | None]:
        """(1, None) or (2, clientSalt) for the account (PyFxA's get_key_stretch_version)."""
        data = await self._call("POST", "/v1/account/credentials/status", body={"email": email})
        if isinstance(data, dict) and data.get("currentVersion") == "v2":
            salt = data.get("clientSalt")
            try:
                return 2, onepw.parse_client_salt(salt)
            except onepw.OnepwError:
                raise FxaClientError("the server sent an unusable clientSalt") from None
        return 1, None

    async def login(self, email: str, password: str) -> tuple[Session, bytes]:
        """Sign in with keys; returns the session and kB (the caller drops kB after use)."""
        version, salt = await self.key_stretch(email)
        for attempt in (1, 2):
            if version == 2:
                assert salt is not None
                creds = await trio.to_thread.run_sync(
                    onepw.client_credentials_v2, salt, password)
            else:
                creds = await trio.to_thread.run_sync(
                    onepw.client_credentials_v1, email, password)
            try:
                data = await self._call("POST", "/v1/account/login?keys=true", body={
                    "email": email, "authPW": creds.auth_pw.hex(), "service": "sync",
                    "reason": "signin"})
            except IncorrectEmailCase as exc:
                if attempt == 1 and exc.canonical_email and exc.canonical_email != email:
                    email = exc.canonical_email  # the v1 salt is the stored address
                    continue
                raise
            break
        try:
            uid = data["uid"]
            session = Session(uid, fxatokens.derive(bytes.fromhex(data["sessionToken"]),
                                                    "sessionToken"))
            kft = data.get("keyFetchTokenVersion2") or data["keyFetchToken"]
            key_fetch = fxatokens.derive(bytes.fromhex(kft), "keyFetchToken")
        except (KeyError, TypeError, ValueError):
            raise FxaClientError("the login answer lacks its tokens") from None
        try:
            bundle = await self._call("GET", "/v1/account/keys", creds=key_fetch)
            try:
                _ka, wrapped = onepw.unbundle_keys(key_fetch.extra,
                                                   bytes.fromhex(bundle["bundle"]))
            except (KeyError, TypeError, ValueError):
                raise FxaClientError("the key bundle does not verify") from None
            return session, onepw.unwrap_kb(wrapped, creds.unwrap_b_key)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.destroy_session(session)
            raise

    async def scoped_key_data(self, session: Session, client_id: str,
                              scope: str) -> dict[str, Any]:
        data = await self._call("POST", "/v1/account/scoped-key-data",
                                body={"client_id": client_id, "scope": scope},
                                creds=session.credentials)
        if not isinstance(data, dict):
            raise FxaClientError("scoped-key-data is not an object")
        return data

    async def authorization(self, session: Session, body: dict[str, Any]) -> dict[str, Any]:
        data = await self._call("POST", "/v1/oauth/authorization", body=body,
                                creds=session.credentials)
        if not isinstance(data, dict):
            raise FxaClientError("the authorization answer is not an object")
        return data

    async def refresh_token_ids(self, session: Session, client_id: str) -> set[str]:
        """Ids of the account's refresh tokens held by ``client_id`` (attached clients)."""
        data = await self._call("GET", "/v1/account/attached_clients",
                                creds=session.credentials)
        if not isinstance(data, list):
            raise FxaClientError("attached_clients is not a list")
        return {c["refreshTokenId"] for c in data
                if isinstance(c, dict) and c.get("clientId") == client_id
                and isinstance(c.get("refreshTokenId"), str)}

    async def destroy_session(self, session: Session) -> bool:
        """Best effort, bounded; True when the server confirmed."""
        with trio.move_on_after(RELEASE_TIMEOUT):
            try:
                await self._call("POST", "/v1/session/destroy", body={},
                                 creds=session.credentials)
                return True
            except FxaServerError as exc:
                return exc.errno == ERRNO_INVALID_TOKEN  # already gone: as good
            except FxaClientError:
                return False
        return False

    # --- one pairing -----------------------------------------------------------------------

    async def authorize_pairing(self, email: str, password: str,
                                phone: PhoneAuthorization) -> PairingGrant:
        """Sign in, build keys_jwe for the phone and get its code (pairing.md §5.1)."""
        # DIVERGENCE: desktop authorizes with the long-lived session it already holds; Foxden
        # signs in for this one pairing (the password is typed for it) and destroys that
        # session afterwards (PairingGrant.release).
        session, kb = await self.login(email, password)
        try:
            scope = " ".join(phone.scope)
            known = await self.refresh_token_ids(session, phone.client_id)
            key_data = await self.scoped_key_data(session, phone.client_id, scope)
            keys: dict[str, dict[str, str]] = {}
            for name, info in key_data.items():
                if name != OLDSYNC:
                    # DIVERGENCE: desktop derives any scope it holds a key for; Foxden's
                    # server only has oldsync as a key-bearing scope.
                    raise FxaClientError(f"cannot derive a key for scope {name!r}")
                ts = info.get("keyRotationTimestamp") if isinstance(info, dict) else None
                if isinstance(ts, bool) or not isinstance(ts, int) or ts <= 0:
                    raise FxaClientError("scoped-key-data has no usable keyRotationTimestamp")
                keys[name] = onepw.oldsync_jwk(kb, ts)
            kb = b""  # drop our reference to kB as soon as the key is derived
            body: dict[str, Any] = {
                "client_id": phone.client_id, "response_type": "code", "state": phone.state,
                "scope": scope, "access_type": "offline", "code_challenge": phone.code_challenge,
                "code_challenge_method": "S256",
            }
            if keys:
                body["keys_jwe"] = onepw.build_keys_jwe(dict(phone.keys_jwk),
                                                        onepw.scoped_keys_plaintext(keys))
            keys.clear()
            answer = await self.authorization(session, body)
            result = _authorization_result(answer, phone.state)
        except BaseException:
            kb = b""
            with trio.CancelScope(shield=True):
                await self.destroy_session(session)
            raise
        return PairingGrant(self, session, phone.client_id, known, result)


def _authorization_result(answer: Mapping[str, Any], state: str) -> AuthorizationResult:
    code, got_state = answer.get("code"), answer.get("state")
    redirect, scope = answer.get("redirect"), answer.get("scope")
    if not isinstance(code, str) or not _CODE.match(code):
        raise FxaClientError("the authorization answer has no usable code")
    if got_state != state:
        # Desktop checks this too before relaying the answer (FF _authorizeOAuthCode).
        raise FxaClientError("the authorization answer has another state")
    if not isinstance(redirect, str) or not isinstance(scope, str):
        raise FxaClientError("the authorization answer lacks redirect/scope")
    return AuthorizationResult(code, state, redirect, scope)


class PairingGrant:
    """The code for the phone plus the session it hangs off, until :meth:`release`."""

    def __init__(self, client: FxaClient, session: Session, client_id: str,
                 known_refresh_ids: set[str], result: AuthorizationResult) -> None:
        self._client = client
        self._session: Session | None = session
        self._client_id = client_id
        self._known = known_refresh_ids
        self.result = result

    @property
    def released(self) -> bool:
        return self._session is None

    async def wait_redeemed(self, timeout: float) -> bool:
        """True once the phone's client holds a refresh token it did not hold before (the
        code exchange happened); False after ``timeout`` seconds or on errors."""
        with trio.move_on_after(timeout):
            while self._session is not None:
                try:
                    now = await self._client.refresh_token_ids(self._session, self._client_id)
                except FxaClientError:
                    return False
                if now - self._known:
                    return True
                await trio.sleep(POLL_INTERVAL)
        return False

    async def release(self) -> None:
        """Destroy the session (and with it an unredeemed code); idempotent, bounded."""
        session, self._session = self._session, None
        if session is not None:
            with trio.CancelScope(shield=True):
                await self._client.destroy_session(session)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error(status: int, data: Any) -> FxaServerError:
    errno = data.get("errno") if isinstance(data, dict) else None
    message = data.get("message") if isinstance(data, dict) else None
    message = message if isinstance(message, str) else "request failed"
    if errno == ERRNO_INCORRECT_PASSWORD:
        return IncorrectPassword(status, errno, "incorrect password")
    if errno == ERRNO_INCORRECT_EMAIL_CASE:
        return IncorrectEmailCase(status, errno, data.get("email"))
    if errno == ERRNO_UNKNOWN_ACCOUNT:
        return UnknownAccount(status, errno, "unknown account")
    if status == 429 or errno == ERRNO_THROTTLED:
        retry = data.get("retryAfter") if isinstance(data, dict) else None
        return TooManyAttempts(status, errno, "too many attempts",
                               retry if isinstance(retry, int) else None)
    return FxaServerError(status, errno, message[:200])
