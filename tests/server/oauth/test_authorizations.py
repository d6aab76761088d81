"""ADR 0051 account authorizations: written at the grant, updated, kept alive by the right
token, deleted with the last one or with the account."""

from __future__ import annotations

import time
from typing import Any

from server.accounts import tokens as fxa_tokens
from server.oauth import authorizations, clients
from server.oauth import store as oauth_store
from tests.conftest import LiveServer

from .helpers import (
    DESKTOP,
    FENIX,
    OLDSYNC,
    authorize,
    create_account,
    credentials,
    exchange,
    post,
)


async def rows(server: LiveServer, uid: str) -> list[tuple[str, str, str, int, int]]:
    found = await server.db.read(lambda c: authorizations.list_authorizations(c, uid))
    return [(a.scope, a.service, a.client_id, a.first_authorized_at, a.last_authorized_at)
            for a in found]


async def test_desktop_grant_lives_on_its_session(server: LiveServer) -> None:
    account = await create_account(server)
    before = int(time.time() * 1000)
    authz, verifier = await authorize(server, account)
    (row,) = await rows(server, account.uid)
    assert row[:3] == (OLDSYNC, "sync", DESKTOP) and row[3] == row[4] >= before
    listed = await server.db.read(lambda c: authorizations.list_authorizations(c, account.uid))
    assert listed[0].as_json()["clientName"] == "Firefox"

    # Firefox exchanges the code and destroys the refresh token at once: still authorized.
    tokens = (await exchange(server, authz["code"], verifier, account=account)).json()
    await post(server, "/v1/oauth/destroy", {"client_id": DESKTOP,
                                             "token": tokens["refresh_token"]})
    assert len(await rows(server, account.uid)) == 1
    # Silent paths never write or bump (ADR 0051).
    assert (await credentials(server, account, OLDSYNC)).status_code == 200
    assert (await rows(server, account.uid))[0] == row

    # A second interactive grant bumps last_authorized_at only.
    time.sleep(0.01)
    await authorize(server, account)
    (again,) = await rows(server, account.uid)
    assert again[3] == row[3] and again[4] > row[4]

    # Sign-out (session destroyed): the last backer is gone, so is the row.
    await server.db.write(lambda c: fxa_tokens.delete(c, account.session_id))
    assert await rows(server, account.uid) == []


async def test_only_offline_grants_of_service_scopes(server: LiveServer) -> None:
    account = await create_account(server)
    await authorize(server, account, access_type="online")
    await authorize(server, account, scope="profile")
    assert await rows(server, account.uid) == []


async def test_phone_grant_moves_from_code_to_refresh_token(server: LiveServer) -> None:
    account = await create_account(server)
    authz, verifier = await authorize(server, account, client_id=FENIX, service=None)
    assert [r[:3] for r in await rows(server, account.uid)] == [(OLDSYNC, "sync", FENIX)]
    refresh = (await exchange(server, authz["code"], verifier, FENIX)).json()["refresh_token"]
    assert len(await rows(server, account.uid)) == 1  # now backed by the refresh token
    # Desktop's session (the pairing authority) does not back the phone's row.
    await server.db.write(lambda c: fxa_tokens.delete(c, account.session_id))
    assert len(await rows(server, account.uid)) == 1
    await post(server, "/v1/oauth/destroy", {"client_id": FENIX, "token": refresh})
    assert await rows(server, account.uid) == []


async def test_unredeemed_code_row_goes_with_the_code(server: LiveServer) -> None:
    account = await create_account(server)
    await authorize(server, account, client_id=FENIX, service=None)
    assert len(await rows(server, account.uid)) == 1
    later = int(time.time() * 1000) + 10 * 60 * 1000
    await server.db.write(lambda c: oauth_store.purge_expired(c, later))
    assert await rows(server, account.uid) == []


async def test_account_deletion_cascades(server: LiveServer) -> None:
    account = await create_account(server)
    authz, verifier = await authorize(server, account, client_id=FENIX, service=None)
    await exchange(server, authz["code"], verifier, FENIX)
    await authorize(server, account)
    assert len(await rows(server, account.uid)) == 2

    def delete(conn: Any) -> list[int]:
        conn.execute("DELETE FROM accounts WHERE uid = ?", (account.uid,))
        return [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in (  # noqa: S608
            "oauth_authorizations", "oauth_authorization_backers", "oauth_codes",
            "oauth_refresh_tokens", "oauth_access_tokens", "oauth_used_codes")]

    assert await server.db.write(delete) == [0, 0, 0, 0, 0, 0]


async def test_revoke_authorization(server: LiveServer) -> None:
    account = await create_account(server)
    authz, verifier = await authorize(server, account, client_id=FENIX, service=None)
    tokens = (await exchange(server, authz["code"], verifier, FENIX)).json()
    revoked = await server.db.write(lambda c: authorizations.revoke_authorization(
        c, account.uid, scope=OLDSYNC, service="sync", client_id=FENIX))
    assert revoked is True
    assert await rows(server, account.uid) == []
    r = await post(server, "/v1/oauth/token", {"grant_type": "refresh_token",
                                                "client_id": FENIX,
                                                "refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401
    again = await server.db.write(lambda c: authorizations.revoke_authorization(
        c, account.uid, scope=OLDSYNC, service="sync", client_id=FENIX))
    assert again is False


async def test_password_change_moves_desktop_backing(server: LiveServer) -> None:
    from .helpers import new_session

    account = await create_account(server)
    await authorize(server, account)
    fresh = await new_session(server, account)

    def change(conn: Any) -> None:
        authorizations.move_session_backers(conn, account.session_id, fresh.session_id)
        fxa_tokens.delete(conn, account.session_id)

    await server.db.write(change)
    assert len(await rows(server, account.uid)) == 1
    await server.db.write(lambda c: fxa_tokens.delete(c, fresh.session_id))
    assert await rows(server, account.uid) == []


def test_resolve_rules() -> None:
    desktop, fenix = clients.FIREFOX_DESKTOP, clients.FENIX
    assert authorizations.resolve(desktop, ("profile", OLDSYNC), "sync") == [(OLDSYNC, "sync")]
    assert authorizations.resolve(desktop, ("profile", OLDSYNC), "") == [(OLDSYNC, "sync")]
    # service= naming another configured service does not relabel a scope it does not own.
    assert authorizations.resolve(desktop, (OLDSYNC,), "relay") == [(OLDSYNC, "sync")]
    assert authorizations.resolve(desktop, ("profile",), "sync") == []
    relay = clients.RELAY
    assert authorizations.resolve(desktop, (relay,), "relay") == [(relay, "relay")]
    # VPN admits desktop only (its allowedClientsForService).
    assert authorizations.resolve(fenix, (clients.VPN,), "") == []
    assert authorizations.resolve(fenix, (OLDSYNC,), "relay") == [(OLDSYNC, "sync")]
