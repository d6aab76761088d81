"""The OAuth routes, on the one public origin (firefox-signin.md §3.2; pairing.md §5).

Auth-server routes (Firefox desktop, application-services):

* ``POST /v1/oauth/authorization`` — sessionToken (HAWK or ``Bearer fxs_``); a single-use
  code, 5 min, bound to client, PKCE challenge, scope and keys_jwe.
* ``POST /v1/oauth/token`` — ``authorization_code`` (+ PKCE), ``refresh_token``,
  ``fxa-credentials`` (sessionToken).
* ``POST /v1/oauth/destroy`` — always ``200 {}`` for a well-formed body (Firefox aborts
  ``oauth_login`` otherwise); revokes the token if it matches.
* ``GET /v1/account/attached_clients``, ``POST /v1/account/attached_client/destroy``.

OAuth-server routes on the same origin (PyFxA 0.9, ``oauth_server_base_url`` users):
``/v1/authorization`` (GET redirects to the page, POST = the session route),
``/v1/token``, ``/v1/verify``, ``/v1/destroy``, ``/v1/introspect``, ``/v1/jwks``,
``/v1/client/<id>``.

Access tokens are RS256 ``at+jwt`` JWTs (server/crypto/jwt_tokens.py) for every scope
(DIVERGENCE: FxA gives most clients opaque hex tokens and JWTs only to allow-listed ones),
and each is also recorded by ``sha256(token)``, so ``/v1/verify``, ``/v1/destroy`` and the
profile server see revocations; the tokenserver checks the signature and its audience
(``<origin>/1.0/sync/1.5``, present when oldsync is granted).  Codes and refresh tokens are
32 random bytes in hex, stored hashed.  Nothing here logs a token, code, verifier or
keys_jwe.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from quart import Blueprint, Response, request
from quart_trio import QuartTrio

from .. import fxa_errors
from ..accounts import tokens as fxa_tokens
from ..accounts.auth import authenticate
from ..accounts.tokens import TokenRow
from ..crypto import jwt_tokens
from ..db.engine import Connection, Database
from ..errors import FxaError
from ..settings import Settings
from . import attached, authorizations, clients, errors, grants, store
from .errors import Family
from .grants import TokenRequest
from .http import NO_STORE, check_size, json_response, now_ms, read_body

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


class OAuthServer:
    """The routes' shared state: the database, the signer and the public origin."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.origin = settings.origin
        self.signer = jwt_tokens.Signer.from_pem(
            settings.oauth_signing_key_pem, settings.oauth_key_id, settings.origin)
        self.jwks = jwt_tokens.jwks(settings.oauth_signing_key_pem, settings.oauth_key_id)

    # --- minting ---------------------------------------------------------------------

    def mint(self, conn: Connection, *, uid: str, client_id: str, scope: tuple[str, ...],
             ttl: int, auth_at: int, refresh_id: str | None, session_id: str | None,
             now: int) -> tuple[str, int]:
        """Sign and record one access token.  A vanished or disabled account raises, so the
        whole transaction (a refresh token minted alongside) rolls back."""
        account = store.account(conn, uid)
        if account is None:
            raise fxa_errors.invalid_token("Unknown account")
        now_s = now // 1000
        extra = ({"fxa-profileChangedAt": account.profile_changed_at}
                 if account.profile_changed_at else None)
        token = self.signer.mint(
            sub=uid, client_id=client_id, scope=scope, ttl=ttl, now=now_s,
            audience=jwt_tokens.audience_for(self.origin, client_id, scope),
            generation=account.generation, extra=extra)
        store.insert_access(conn, store.AccessRow(
            grants.token_hash(token), client_id, uid, scope, refresh_id, session_id,
            auth_at, now, (now_s + ttl) * 1000))
        return token, ttl

    # --- /authorization --------------------------------------------------------------

    async def authorize(self, family: Family) -> Response:
        check_size()
        session = await authenticate("sessionToken")
        req = grants.parse_authorization(await read_body(family), family)
        if clients.key_bearing(req.scope) and not session.verified:
            raise errors.unverified_session()
        code = grants.new_secret()
        code_hash = grants.token_hash(code)
        now = now_ms()
        rows = authorizations.resolve(req.client, req.scope, req.service) if req.offline else []

        def write(conn: Connection) -> None:
            store.insert_code(conn, store.CodeRow(
                code_hash, req.client.id, session.uid, session.id, req.scope, req.service,
                req.offline, req.code_challenge, req.keys_jwe, session.created_at // 1000,
                now, now + grants.CODE_TTL_MS))
            if rows:
                authorizations.record_grant(conn, uid=session.uid, client=req.client,
                                            rows=rows, code_hash=code_hash,
                                            session_id=session.id, now_ms=now)
            fxa_tokens.touch(conn, session.id, now)
            store.purge_expired(conn, now, limit=100)

        await self.db.write(write)
        return json_response({"code": code, "state": req.state, "redirect": req.redirect(code),
                              "scope": " ".join(req.scope)}, headers=NO_STORE)

    # --- /token ----------------------------------------------------------------------

    async def token(self, family: Family) -> Response:
        check_size()
        session = (await authenticate("sessionToken")
                   if request.headers.get("Authorization") else None)
        req = grants.parse_token(await read_body(family), family)
        if req.grant_type == grants.GRANT_CODE:
            body = await self._code_grant(req, family)
        elif req.grant_type == grants.GRANT_REFRESH:
            body = await self._refresh_grant(req, family)
        else:
            if session is None:
                raise fxa_errors.invalid_token("Missing or unsupported authentication")
            body = await self._credentials_grant(req, session)
        return json_response(body, headers=NO_STORE)

    async def _code_grant(self, req: TokenRequest, family: Family) -> dict[str, Any]:
        assert req.code is not None
        code_hash = grants.token_hash(req.code)
        user_agent = request.headers.get("User-Agent", "")

        def write(conn: Connection) -> tuple[str, Any]:
            # Failures are returned, not raised: a replay revocation or an expired code's
            # deletion must commit before the error goes out.
            now = now_ms()
            row = store.get_code(conn, code_hash)
            if row is None:
                return ("replayed" if store.revoke_replayed_code(conn, code_hash, now)
                        else "unknown", None)
            if row.client_id != req.client.id:
                return "mismatch", None
            if row.expires_at <= now:
                store.delete_code(conn, code_hash)
                return "expired", row.expires_at
            if row.code_challenge is not None:
                if req.code_verifier is None:
                    return "missing_pkce", None
                if not grants.pkce_ok(row.code_challenge, req.code_verifier):
                    return "bad_verifier", None
            elif req.code_verifier is not None:
                return "bad_verifier", None
            refresh_token = refresh_id = None
            if row.offline:
                refresh_token = grants.new_secret()
                refresh_id = grants.token_hash(refresh_token)
                store.insert_refresh(conn, store.RefreshRow(
                    refresh_id, row.client_id, row.uid, grants.refreshable(row.scope),
                    row.service, row.auth_at, now, now))
                authorizations.transfer_to_refresh_token(conn, code_hash, refresh_id)
            minted = self.mint(conn, uid=row.uid, client_id=row.client_id, scope=row.scope,
                               ttl=req.ttl, auth_at=row.auth_at, refresh_id=refresh_id,
                               session_id=None, now=now)
            session_token = None
            if clients.SESSION_SCOPE in row.scope:
                # A fresh session for the app (pairing: the phone has none of its own),
                # with the authorizing session's verification state (FxA copyTokenState).
                parent = fxa_tokens.get(conn, row.session_id, now)
                session_token = fxa_tokens.create(
                    conn, "sessionToken", row.uid, now, user_agent=user_agent,
                    verified=parent.verified if parent else False)
            store.remember_used_code(conn, code_hash, row.uid, refresh_id,
                                     grants.token_hash(minted[0]),
                                     now + grants.USED_CODE_MEMORY_MS)
            store.delete_code(conn, code_hash)
            return "ok", grants.token_response(
                access_token=minted[0], scope=row.scope, expires_in=minted[1],
                auth_at=row.auth_at, refresh_token=refresh_token, keys_jwe=row.keys_jwe,
                session_token=session_token)

        status, value = await self.db.write(write)
        if status == "ok":
            return value  # type: ignore[no-any-return]
        if status == "mismatch":
            raise errors.mismatch_code()
        if status == "expired":
            raise errors.expired_code(value)
        if status == "missing_pkce":
            raise errors.missing_pkce()
        if status == "bad_verifier":
            raise errors.mismatch_code_challenge()
        raise errors.unknown_code()

    async def _refresh_grant(self, req: TokenRequest, family: Family) -> dict[str, Any]:
        assert req.refresh_token is not None
        token_id = grants.token_hash(req.refresh_token)

        def write(conn: Connection) -> dict[str, Any] | None:
            now = now_ms()
            row = store.get_refresh(conn, token_id)
            if row is None or row.client_id != req.client.id:
                return None
            scope = grants.refresh_scope(req.client, row.scope, req.scope)
            minted = self.mint(conn, uid=row.uid, client_id=row.client_id, scope=scope,
                               ttl=req.ttl, auth_at=row.auth_at, refresh_id=row.id,
                               session_id=None, now=now)
            store.touch_refresh(conn, row.id, now)
            return grants.token_response(access_token=minted[0], scope=scope,
                                         expires_in=minted[1], auth_at=row.auth_at)

        body = await self.db.write(write)
        if body is None:
            raise errors.invalid_token(family)
        return body

    async def _credentials_grant(self, req: TokenRequest, session: TokenRow) -> dict[str, Any]:
        assert req.scope is not None
        if not req.client.can_grant:
            raise errors.invalid_grant_type()
        if not req.client.public:
            raise errors.not_public_client(req.client.id)
        grants.check_allowed(req.client, req.scope)
        if clients.key_bearing(req.scope) and not session.verified:
            raise errors.unverified_session()
        auth_at = session.created_at // 1000

        def write(conn: Connection) -> dict[str, Any]:
            now = now_ms()
            refresh_token = refresh_id = None
            if req.offline:
                refresh_token = grants.new_secret()
                refresh_id = grants.token_hash(refresh_token)
                store.insert_refresh(conn, store.RefreshRow(
                    refresh_id, req.client.id, session.uid, grants.refreshable(req.scope), "",
                    auth_at, now, now))
            minted = self.mint(conn, uid=session.uid, client_id=req.client.id,
                               scope=req.scope, ttl=req.ttl, auth_at=auth_at,
                               refresh_id=refresh_id, session_id=session.id, now=now)
            fxa_tokens.touch(conn, session.id, now)
            return grants.token_response(access_token=minted[0], scope=req.scope,
                                         expires_in=minted[1], auth_at=auth_at,
                                         refresh_token=refresh_token)

        return await self.db.write(write)

    # --- revocation, verification ----------------------------------------------------

    async def destroy(self, family: Family) -> Response:
        data = await read_body(family)
        client_id = data.get("client_id")
        if not (isinstance(client_id, str) and clients.CLIENT_ID.match(client_id.lower())):
            client_id = None
        else:
            client_id = client_id.lower()
        candidates = [v for k in ("token", "access_token", "refresh_token")
                      if isinstance(v := data.get(k), str) and 0 < len(v) <= 8192]
        refresh_token_id = data.get("refresh_token_id")
        if not (client_id and isinstance(refresh_token_id, str)
                and _HEX64.match(refresh_token_id)):
            refresh_token_id = None

        def write(conn: Connection) -> None:
            for value in candidates:
                token_id = grants.token_hash(value if "." in value else value.lower())
                if not store.delete_access(conn, token_id, client_id=client_id):
                    store.delete_refresh(conn, token_id, client_id=client_id)
            if refresh_token_id:
                store.delete_refresh(conn, refresh_token_id.lower(), client_id=client_id)

        if candidates or refresh_token_id:
            await self.db.write(write)
        return json_response({})

    async def verify(self) -> Response:
        data = await read_body(Family.LEGACY)
        token = grants.Body(data, Family.LEGACY).required("token", max_len=8192)

        def read(conn: Connection) -> dict[str, Any] | None:
            row = store.get_access(conn, grants.token_hash(token), now_ms())
            account = store.account(conn, row.uid) if row else None
            if row is None or account is None:
                return None
            out: dict[str, Any] = {"user": row.uid, "client_id": row.client_id,
                                   "scope": list(row.scope), "generation": account.generation}
            if account.profile_changed_at:
                out["profile_changed_at"] = account.profile_changed_at
            return out

        body = await self.db.read(read)
        if body is None:
            raise errors.invalid_token(Family.LEGACY)
        return json_response(body)

    async def introspect(self) -> Response:
        """RFC 7662, as FxA's lib/routes/oauth/introspect.js; application-services asks
        it whether its refresh token is still active."""
        data = await read_body(Family.LEGACY)
        body = grants.Body(data, Family.LEGACY)
        token = body.required("token", max_len=8192)
        hint = body.string("token_type_hint", max_len=64)
        token_id = grants.token_hash(token if "." in token else token.lower())

        def read(conn: Connection) -> dict[str, Any]:
            now = now_ms()
            kinds = ["refresh_token", "access_token"]
            if hint != "refresh_token":
                kinds.reverse()
            for kind in kinds:
                if kind == "access_token" and (a := store.get_access(conn, token_id, now)):
                    return {"active": True, "scope": " ".join(a.scope),
                            "client_id": a.client_id, "sub": a.uid, "token_type": kind,
                            "iat": a.created_at // 1000, "exp": a.expires_at // 1000}
                if kind == "refresh_token" and (r := store.get_refresh(conn, token_id)):
                    return {"active": True, "scope": " ".join(r.scope),
                            "client_id": r.client_id, "sub": r.uid, "token_type": kind,
                            "iat": r.created_at // 1000, "fxa-lastUsedAt": r.last_used_at}
            return {"active": False}

        return json_response(await self.db.read(read))


def make_blueprint(settings: Settings, db: Database) -> Blueprint:
    bp = Blueprint("oauth", __name__)
    srv = OAuthServer(settings, db)

    @bp.post("/v1/oauth/authorization")
    async def oauth_authorization() -> Response:
        return await srv.authorize(Family.AUTH)

    @bp.post("/v1/oauth/token")
    async def oauth_token() -> Response:
        return await srv.token(Family.AUTH)

    @bp.post("/v1/oauth/destroy")
    async def oauth_destroy() -> Response:
        return await srv.destroy(Family.AUTH)

    @bp.get("/v1/authorization")
    async def authorization_page() -> Response:
        # FxA redirects the OAuth server's GET to the content server's page; keys_jwk is
        # refused so a key never transits a URL the OAuth server handles (bz1456351).
        if "keys_jwk" in request.args:
            raise errors.invalid_parameter(Family.LEGACY, "keys_jwk")
        query = urlencode(list(request.args.items(multi=True)))
        resp = Response("", status=302)
        resp.headers["Location"] = f"{srv.origin}/authorization" + (f"?{query}" if query else "")
        return resp

    @bp.post("/v1/authorization")
    async def legacy_authorization() -> Response:
        # DIVERGENCE: FxA's OAuth server wants a BrowserID assertion here; there are none
        # left, so this takes the session as /v1/oauth/authorization does.
        if not request.headers.get("Authorization"):
            raise errors.invalid_assertion()
        return await srv.authorize(Family.LEGACY)

    @bp.post("/v1/token")
    async def legacy_token() -> Response:
        return await srv.token(Family.LEGACY)

    @bp.post("/v1/destroy")
    async def legacy_destroy() -> Response:
        return await srv.destroy(Family.LEGACY)

    @bp.post("/v1/verify")
    async def legacy_verify() -> Response:
        return await srv.verify()

    @bp.post("/v1/introspect")
    async def legacy_introspect() -> Response:
        return await srv.introspect()

    @bp.get("/v1/jwks")
    async def jwks() -> Response:
        return json_response(srv.jwks, headers={"Cache-Control": "public, max-age=3600",
                                                "Access-Control-Allow-Origin": "*"})

    @bp.get("/v1/client/<client_id>")
    async def client_info(client_id: str) -> Response:
        if not clients.CLIENT_ID.match(client_id.lower()):
            raise errors.invalid_parameter(Family.LEGACY, "client_id")
        client = clients.get(client_id)
        if client is None:
            raise errors.unknown_client(client_id)
        return json_response(client.as_json())

    attached.add_routes(bp, db)
    return bp


def register(app: QuartTrio, settings: Settings, db: Database) -> None:
    app.register_blueprint(make_blueprint(settings, db))


__all__ = ["FxaError", "OAuthServer", "make_blueprint", "register"]
