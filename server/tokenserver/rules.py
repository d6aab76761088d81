"""Tokenserver request rules (sans-IO), after syncstorage-rs ``ts/extractors.rs`` and
``ts/handlers.rs`` (docs: storage-tokenserver.md §10).

Each parser raises :class:`Reject`, which carries exactly the error envelope fields the
route turns into a response.  The order of checks a request goes through:

1. ``Authorization`` (:func:`parse_authorization`), then the OAuth JWT (the route);
2. ``X-KeyID`` and ``X-Client-State`` (:func:`parse_key_id`);
3. application and version (:func:`check_application`);
4. the query (:func:`parse_duration`);
5. the stored record: :func:`select_current`, then :func:`check_consistency` (§10.3,
   checks 1-8 in order), then :func:`plan_update` (§10.4).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

SYNC_SERVICE = "sync-1.5"
# The generation of a retired user (syncstorage-rs MAX_GENERATION): blocks every login.
MAX_GENERATION = 2**63 - 1
_I64_MAX = 2**63 - 1
_CLIENT_STATE_HEADER = re.compile(r"[a-zA-Z0-9._-]{1,32}")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_UNSIGNED = re.compile(r"\+?[0-9]+")  # what Rust's str::parse::<u64>/<i64> accept here


class Reject(Exception):
    """A tokenserver error response: ``{"status", "errors": [{location, name, description}]}``."""

    def __init__(self, http_status: int, status: str = "error", *, location: str = "body",
                 name: str = "", description: str = "Unauthorized") -> None:
        super().__init__(f"{http_status} {status}: {description}")
        self.http_status = http_status
        self.status = status
        self.location = location
        self.name = name
        self.description = description

    def fields(self) -> tuple[int, str, str, str, str]:
        return self.http_status, self.status, self.location, self.name, self.description


def unauthorized(description: str = "Unauthorized") -> Reject:
    return Reject(401, description=description)


def invalid_credentials() -> Reject:
    return Reject(401, "invalid-credentials")


def invalid_key_id(description: str) -> Reject:
    return Reject(401, "invalid-key-id", location="header", description=description)


def invalid_client_state(reason: str) -> Reject:
    return Reject(401, "invalid-client-state", location="header", name="X-Client-State",
                  description=f"Unacceptable client-state value {reason}")


def invalid_generation() -> Reject:
    return Reject(401, "invalid-generation")


def invalid_keys_changed_at() -> Reject:
    return Reject(401, "invalid-keysChangedAt")


def new_users_disabled() -> Reject:
    return Reject(403, "new-users-disabled", description="New users are not allowed")


def invalid_query() -> Reject:
    return Reject(400, location="url", description="invalid query params")


def unsupported_application() -> Reject:
    return Reject(404, location="url", name="application", description="Unsupported application")


def _visible_ascii(value: str) -> bool:
    # actix HeaderValue::to_str: bytes 0x20-0x7e and tab.  ASGI hands us latin-1 text.
    return all(" " <= c <= "~" or c == "\t" for c in value)


# --- headers -----------------------------------------------------------------------------

def parse_authorization(value: str | None) -> str:
    """The bearer token.  Scheme case-insensitive; token = everything after the first space."""
    if value is None or not _visible_ascii(value):
        raise unauthorized()
    scheme, sep, token = value.partition(" ")
    if not sep:
        raise unauthorized()
    if scheme.lower() != "bearer":
        raise unauthorized("Unsupported")
    return token


@dataclass(frozen=True, slots=True)
class KeyId:
    keys_changed_at: int | None  # ms; 0 -> None, as syncstorage-rs does
    client_state: str  # lower-case hex; "" when the header carries no bytes


def parse_key_id(x_key_id: str | None, x_client_state: str | None) -> KeyId:
    """``X-KeyID: <keys_changed_at>-<base64url-nopad client state>``, cross-checked with the
    legacy ``X-Client-State`` (hex) when that is present and readable."""
    if x_key_id is None:
        raise invalid_key_id("Missing X-KeyID header")
    if not _visible_ascii(x_key_id):
        raise invalid_key_id("Invalid X-KeyID header")
    kca_text, sep, encoded = x_key_id.partition("-")
    if not sep:
        raise invalid_credentials()
    client_state = _b64url_nopad_to_hex(encoded)
    # A header with non-visible bytes is ignored, like actix's to_str().ok().
    if x_client_state is not None and _visible_ascii(x_client_state):
        if not _CLIENT_STATE_HEADER.fullmatch(x_client_state):
            raise Reject(400, location="header", name="X-Client-State",
                         description="Invalid client state value")
        if x_client_state != client_state:
            raise Reject(401, "invalid-client-state")
    if not _UNSIGNED.fullmatch(kca_text) or int(kca_text) > _I64_MAX:
        raise invalid_credentials()
    return KeyId(int(kca_text) or None, client_state)


def _b64url_nopad_to_hex(text: str) -> str:
    # Strict like Rust's URL_SAFE_NO_PAD engine: no padding, no other alphabet, and
    # canonical trailing bits (re-encoding must give the input back).
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise invalid_credentials()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise invalid_credentials() from None
    if base64.urlsafe_b64encode(raw).decode().rstrip("=") != text:
        raise invalid_credentials()
    return raw.hex()


def check_application(application: str, version: str) -> None:
    if application != "sync":
        raise unsupported_application()
    if version != "1.5":
        raise Reject(404, location="url", name=version,
                     description="Unsupported application version")


def parse_duration(query_string: str, default: int) -> int:
    """``?duration=N``: honoured when it is an unsigned integer <= the default.

    A bad value never fails the request (syncstorage-rs); only a query its form decoder
    rejects does, i.e. a repeated ``duration``.
    """
    values = [v for k, v in parse_qsl(query_string, keep_blank_values=True,
                                       errors="replace") if k == "duration"]
    if len(values) > 1:
        raise invalid_query()
    if values and _UNSIGNED.fullmatch(values[0]):
        asked = int(values[0])
        if asked <= default:
            return asked
    return default


# DIVERGENCE: Mozilla uses its auth server's host; ours is fixed so that renaming the PC or
# moving to a new public URL never orphans anyone's Sync data under a new record.
FXA_EMAIL_DOMAIN = "accounts.foxden.invalid"


def email_for(fxa_uid: str, domain: str) -> str:
    return f"{fxa_uid}@{domain}"


# --- user records ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AuthData:
    """What the request claims, from the JWT and X-KeyID."""

    fxa_uid: str
    email: str
    generation: int | None
    keys_changed_at: int | None
    client_state: str


@dataclass(frozen=True, slots=True)
class UserRecord:
    """One row: a uid for (service, email) with the key state it was issued for."""

    uid: int
    generation: int
    keys_changed_at: int | None
    client_state: str
    created_at: int
    replaced_at: int | None


@dataclass(frozen=True, slots=True)
class Current:
    """The outcome of :func:`select_current` over all rows of one email."""

    user: UserRecord
    old_client_states: tuple[str, ...]
    to_mark_replaced: tuple[int, ...]  # older rows a race left unreplaced
    needs_new_uid: bool  # current row is replaced: re-issue its state under a new uid


def select_current(rows: Sequence[UserRecord]) -> Current:
    """The current record is the max by (generation, created_at); uid breaks exact ties."""
    if not rows:
        raise ValueError("no rows")
    ordered = sorted(rows, key=lambda r: (r.generation, r.created_at, r.uid), reverse=True)
    user, older = ordered[0], ordered[1:]
    return Current(
        user=user,
        old_client_states=tuple(r.client_state for r in older
                                if r.client_state != user.client_state),
        to_mark_replaced=tuple(r.uid for r in older if r.replaced_at is None),
        needs_new_uid=user.replaced_at is not None and user.generation < MAX_GENERATION,
    )


def _gt(a: int | None, b: int | None) -> bool:
    return a is not None and b is not None and a > b


def _le(a: int | None, b: int | None) -> bool:
    return a is not None and b is not None and a <= b


def check_consistency(auth: AuthData, user: UserRecord, old_client_states: Sequence[str]) -> None:
    """§10.3 checks 1-8, in order; a comparison with an absent value is skipped."""
    # DIVERGENCE: a retired user (account deleted) is refused outright; syncstorage-rs only
    # refuses it (check 6) when the token carries a generation.
    if user.generation >= MAX_GENERATION:
        raise invalid_generation()
    req_gen, req_kca = auth.generation, auth.keys_changed_at
    user_gen, user_kca = user.generation, user.keys_changed_at
    changed = auth.client_state != user.client_state
    if _gt(req_kca, user_kca) and _gt(req_kca, req_gen):  # 1
        raise invalid_keys_changed_at()
    if user.client_state and not auth.client_state:  # 2
        raise invalid_client_state("empty string")
    if auth.client_state in old_client_states:  # 3
        raise invalid_client_state("stale value")
    if changed and _le(req_gen, user_gen):  # 4
        raise invalid_client_state("new value with no generation change")
    if changed and _le(req_kca, user_kca):  # 5
        raise invalid_client_state("new value with no keys_changed_at change")
    if _gt(user_gen, req_gen):  # 6
        raise invalid_generation()
    if _gt(user_kca, req_kca):  # 7
        raise invalid_keys_changed_at()
    if req_kca is None and user_kca:  # 8
        raise invalid_keys_changed_at()


@dataclass(frozen=True, slots=True)
class Update:
    generation: int
    keys_changed_at: int | None
    new_uid: bool  # client state changed: a fresh uid (empty storage), old rows replaced
    changed: bool  # anything to write at all


def plan_update(auth: AuthData, user: UserRecord) -> Update:
    """§10.4, after consistency checks passed (so request values never go backwards)."""
    req_kca, user_kca = auth.keys_changed_at, user.keys_changed_at
    if req_kca is not None:
        kca: int | None = req_kca
    elif user_kca == 0:
        kca = 0
    else:
        kca = None
    if auth.generation is not None:
        generation = auth.generation
    elif (req_kca is not None and req_kca > user.generation
          and (user_kca is None or req_kca > user_kca)):
        generation = req_kca
    else:
        generation = user.generation
    new_uid = auth.client_state != user.client_state
    changed = new_uid or generation != user.generation or kca != user.keys_changed_at
    return Update(generation, kca, new_uid, changed)


# --- the response ------------------------------------------------------------------------

def metrics_hash(secret: str, value: str) -> str:
    return hmac.new(secret.encode("utf-8"), value.encode("utf-8"), hashlib.sha256).hexdigest()


def hashed_fxa_uid(secret: str, fxa_uid: str) -> str:
    return metrics_hash(secret, fxa_uid)[:32]


def hashed_device_id(secret: str, hashed_uid: str) -> str:
    # "none" stands for the device id BrowserID used to carry (syncstorage-rs #1663).
    return metrics_hash(secret, hashed_uid + "none")[:32]


def fxa_kid(keys_changed_at: int | None, generation: int, client_state: str) -> str:
    # Falls back to the generation only when kca is absent (an explicit 0 stays 0), like RS.
    stamp = generation if keys_changed_at is None else keys_changed_at
    state = base64.urlsafe_b64encode(bytes.fromhex(client_state)).decode().rstrip("=")
    return f"{stamp:013d}-{state}"


def token_payload(*, node: str, uid: int, auth: AuthData, update: Update, expires: int,
                  salt: str, metrics_secret: str) -> dict[str, object]:
    """The tokenlib plaintext (§10.5).  ``tokenserver_origin`` is "rust": a syncstorage-rs
    node parses it as an enum of python/rust, and ours ignores it."""
    hashed_uid = hashed_fxa_uid(metrics_secret, auth.fxa_uid)
    return {
        "node": node,
        "fxa_kid": fxa_kid(update.keys_changed_at, update.generation, auth.client_state),
        "fxa_uid": auth.fxa_uid,
        "hashed_device_id": hashed_device_id(metrics_secret, hashed_uid),
        "hashed_fxa_uid": hashed_uid,
        "expires": expires,
        "uid": uid,
        "tokenserver_origin": "rust",
        "salt": salt,
    }
