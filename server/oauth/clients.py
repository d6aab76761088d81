"""The OAuth clients Foxden knows, and the scope algebra they are checked with (sans-IO).

There is no client registration: a household server talks to Mozilla's own apps only.
All three are public clients (no secret, PKCE S256 mandatory) and redirect to the
WebChannel URN (firefox-signin.md §2.3 ``oauth_login``; pairing.md §9.1).

* Firefox desktop ``5882386c6d801776``: asks for ``profile`` (+ ``profile:write``) and
  oldsync; lives on its sessionToken afterwards (``fxa-credentials``), destroys its refresh
  token at once (firefox-signin.md §4).  One client id for several browser services, so its
  authorizations honour the page's ``service=`` (ADR 0051).
* Firefox for Android (Fenix) ``a2270f727f45f648`` and Firefox for iOS ``1b1a3e44c54fbb58``:
  ``profile``, oldsync and ``…/tokens/session``; they keep their refresh token.

Relay, Monitor, VPN and Smart Window scopes are deliberately absent: Foxden has no such
backends, so a token for them would be useless (they get errno 114).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

OLDSYNC = "https://identity.mozilla.com/apps/oldsync"
SESSION_SCOPE = "https://identity.mozilla.com/tokens/session"
RELAY = "https://identity.mozilla.com/apps/relay"
VPN = "https://identity.mozilla.com/apps/vpn"
SMARTWINDOW = "https://identity.mozilla.com/apps/smartwindow"
MONITOR = "https://identity.mozilla.com/apps/monitor"
WEBCHANNEL_REDIRECT = "urn:ietf:wg:oauth:2.0:oob:oauth-redirect-webchannel"

# Scopes whose grant carries a scoped key (keys_jwe): they need a verified session.
KEY_BEARING_SCOPES = frozenset({OLDSYNC})
# One-off credentials: never carried over to a refresh token (FxA token.js).
NOT_REFRESHABLE = frozenset({"openid", SESSION_SCOPE})


@dataclass(frozen=True, slots=True)
class Client:
    id: str
    name: str
    redirect_uri: str
    allowed_scopes: frozenset[str]
    image_uri: str = ""
    trusted: bool = True
    public: bool = True
    # May use grant_type=fxa-credentials (FxA "canGrant").
    can_grant: bool = True
    # Keeps using the authorizing session after sign-in (desktop): its authorizations are
    # backed by that session, and its session-minted tokens show up as the session itself
    # in attached_clients.
    session_backed: bool = False
    # One client id for several browser services: service= says which (ADR 0051).
    service_ambiguous: bool = False

    def as_json(self) -> dict[str, object]:
        """``GET /v1/client/<id>`` (FxA lib/routes/oauth/client/get.js)."""
        return {"id": self.id, "name": self.name, "trusted": self.trusted,
                "image_uri": self.image_uri, "redirect_uri": self.redirect_uri}


_PROFILE = frozenset({"profile", "profile:write"})

FIREFOX_DESKTOP = Client(
    id="5882386c6d801776", name="Firefox", redirect_uri=WEBCHANNEL_REDIRECT,
    allowed_scopes=_PROFILE | {OLDSYNC}, session_backed=True, service_ambiguous=True,
)
FENIX = Client(
    id="a2270f727f45f648", name="Firefox for Android", redirect_uri=WEBCHANNEL_REDIRECT,
    allowed_scopes=_PROFILE | {OLDSYNC, SESSION_SCOPE},
)
FIREFOX_IOS = Client(
    id="1b1a3e44c54fbb58", name="Firefox for iOS", redirect_uri=WEBCHANNEL_REDIRECT,
    allowed_scopes=_PROFILE | {OLDSYNC, SESSION_SCOPE},
)

CLIENTS: dict[str, Client] = {c.id: c for c in (FIREFOX_DESKTOP, FENIX, FIREFOX_IOS)}
CLIENT_ID = re.compile(r"^[0-9a-f]{16}$")


def get(client_id: str) -> Client | None:
    return CLIENTS.get(client_id.lower()) if isinstance(client_id, str) else None


# --- scopes ------------------------------------------------------------------------------

MAX_SCOPE_CHARS = 256  # FxA validators.scope
_SHORTNAME = re.compile(r"^[A-Za-z0-9_]+(?::[A-Za-z0-9_]+)*$")
_URL_SCOPE = re.compile(r"^https://[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[A-Za-z0-9_./-]*)?(?:#[a-z]+)?$")


class ScopeError(ValueError):
    """Not a well-formed FxA scope string."""


def parse_scope(value: str) -> tuple[str, ...]:
    """Whitespace-separated scope values, de-duplicated, in request order (FxA ScopeSet)."""
    if len(value) > MAX_SCOPE_CHARS:
        raise ScopeError("scope too long")
    out: list[str] = []
    for item in value.split():
        if not (_SHORTNAME.match(item) or _URL_SCOPE.match(item)):
            raise ScopeError("bad scope value")
        if item not in out:
            out.append(item)
    return tuple(out)


def implies(have: str, want: str) -> bool:
    """Does scope ``have`` grant ``want``?  FxA's rules (fxa-shared oauth/scopes, as PyFxA's
    ``scope_matches``): ``profile`` covers ``profile:email`` but not ``profile:write``;
    ``profile:write`` covers both; a URL scope covers its sub-paths."""
    if have == want:
        return True
    if have.startswith("https:") or want.startswith("https:"):
        if not (have.startswith("https:") and want.startswith("https:")):
            return False
        h, w = urlsplit(have), urlsplit(want)
        if h.netloc != w.netloc or (h.fragment and h.fragment != w.fragment):
            return False
        hp = h.path.rstrip("/")
        return w.path.rstrip("/") == hp or w.path.startswith(hp + "/")
    hn, wn = have.split(":"), want.split(":")
    if wn[-1] == "write":
        if hn[-1] != "write":
            return False
        hn, wn = hn[:-1], wn[:-1]
    elif hn[-1] == "write":
        hn = hn[:-1]
    return len(hn) <= len(wn) and wn[: len(hn)] == hn


def not_covered(have: Iterable[str], wanted: Iterable[str]) -> list[str]:
    """The wanted scopes no scope in ``have`` implies (empty = all granted)."""
    have = tuple(have)
    return [w for w in wanted if not any(implies(h, w) for h in have)]


def key_bearing(scopes: Iterable[str]) -> list[str]:
    """The key-bearing scopes among ``scopes`` (for scoped-key-data / keys_jwe)."""
    return [s for s in scopes if s in KEY_BEARING_SCOPES]
