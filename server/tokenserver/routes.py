"""``GET /1.0/sync/1.5``: trade an OAuth access token for Sync storage credentials (§10).

The checks run in syncstorage-rs's order (see :mod:`.rules`); every failure becomes the
tokenserver error envelope.  Choices:

* Email = ``<fxa uid>@<public URL host>`` (Mozilla: ``@api.accounts.firefox.com``).
* ``node_type`` is "sqlite": Firefox only reads it, for telemetry.
* Tokens are verified with Foxden's own key only.  # DIVERGENCE: syncstorage-rs falls
  back to FxA's ``/v1/verify`` for tokens that are not JWTs; our OAuth server only issues
  JWTs, so an opaque token is simply invalid-credentials.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import trio
from quart import Blueprint, Response, request
from quart_trio import QuartTrio

from ..crypto import jwt_tokens, tokenlib
from ..db.engine import Connection, Database, DatabaseError
from ..errors import TokenserverError
from ..settings import Settings
from . import rules, store

log = logging.getLogger("foxden.tokenserver")

# How long a request may wait for the database (the writer lock) before a 504 "elapsed".
DB_TIMEOUT_SECONDS = 30.0
NODE_TYPE = "sqlite"


def _error(reject: rules.Reject) -> TokenserverError:
    http_status, status, location, name, description = reject.fields()
    return TokenserverError(http_status, status, location=location, name=name,
                            description=description)


def make_blueprint(settings: Settings, db: Database) -> Blueprint:
    bp = Blueprint("tokenserver", __name__)
    # Computed once: the public key and the HKDF'd token secrets.
    verifier = jwt_tokens.Verifier.from_private_pem(
        settings.oauth_signing_key_pem, jwt_tokens.tokenserver_audience(settings.origin))
    secrets = tokenlib.TokenSecrets.from_master(settings.sync_master_secret)

    @bp.route("/1.0/<application>/<version>", methods=["GET"])
    async def get_token(application: str, version: str) -> Response:
        try:
            auth, duration = _authenticate(verifier, settings, application, version)
            issued = await _run(db, lambda conn: store.issue(
                conn, auth, now_ms=int(time.time() * 1000),
                allow_new_users=settings.allow_new_users))
        except rules.Reject as exc:
            raise _error(exc) from None
        return _token_response(settings, secrets, auth, issued, duration)

    return bp


def _authenticate(verifier: jwt_tokens.Verifier, settings: Settings, application: str,
                  version: str) -> tuple[rules.AuthData, int]:
    token = rules.parse_authorization(request.headers.get("Authorization"))
    try:
        access = verifier.verify(token)
    except jwt_tokens.InvalidAccessToken:
        raise rules.invalid_credentials() from None
    if not access.has_scope(jwt_tokens.OLDSYNC_SCOPE):
        raise rules.invalid_credentials()
    key_id = rules.parse_key_id(request.headers.get("X-KeyID"),
                                request.headers.get("X-Client-State"))
    rules.check_application(application, version)
    # Parsed before the database work (syncstorage-rs: after get-or-create); only the
    # precedence of two simultaneous errors differs.
    duration = rules.parse_duration(request.query_string.decode("latin-1"),
                                    settings.token_duration)
    auth = rules.AuthData(
        fxa_uid=access.sub,
        email=rules.email_for(access.sub, rules.FXA_EMAIL_DOMAIN),
        generation=access.generation,
        keys_changed_at=key_id.keys_changed_at,
        client_state=key_id.client_state,
    )
    return auth, duration


async def _run(db: Database, fn: Callable[[Connection], store.Issued]) -> store.Issued:
    try:
        # Only the wait for the writer is cancellable; a write that started completes.
        with trio.fail_after(DB_TIMEOUT_SECONDS):
            return await db.write(fn)
    except trio.TooSlowError:
        raise rules.Reject(504, "elapsed", description="Elapsed") from None
    except DatabaseError as exc:
        # DIVERGENCE: syncstorage-rs puts the database error text in the description (and
        # may answer 503); we never put internals on the wire.
        log.error("tokenserver database error: %s", type(exc).__name__, exc_info=exc)
        raise rules.Reject(500, "internal-error", location="internal",
                           description="Server error") from None


def _token_response(settings: Settings, secrets: tokenlib.TokenSecrets, auth: rules.AuthData,
                    issued: store.Issued, duration: int) -> Response:
    now = int(time.time())
    salt = tokenlib.new_salt()
    payload = rules.token_payload(
        node=settings.origin, uid=issued.uid, auth=auth, update=issued.update,
        expires=now + duration, salt=salt, metrics_secret=settings.metrics_hash_secret)
    token = tokenlib.make_token(secrets, payload)
    body = {
        "id": token,
        "key": tokenlib.derived_secret(secrets, token, salt),
        "uid": issued.uid,
        "api_endpoint": f"{settings.origin}/1.5/{issued.uid}",
        "duration": duration,
        "hashed_fxa_uid": payload["hashed_fxa_uid"],
        "hashalg": "sha256",
        "node_type": NODE_TYPE,
    }
    resp = Response(json.dumps(body), status=200, content_type="application/json")
    resp.headers["X-Timestamp"] = str(now)
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def register(app: QuartTrio, settings: Settings, db: Database) -> None:
    app.register_blueprint(make_blueprint(settings, db))
