"""Mozilla's own Python client (PyFxA 0.9) against a live server: key stretching v1 and v2.

PyFxA is synchronous (requests), so every call runs in a worker thread.  It authenticates
with prefixed Bearer tokens (fxs_/fxk_/fxpc_), which loopback http allows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
from fxa.core import Client
from fxa.errors import ClientError

from server.accounts import store

from .helpers import AccountsServer, add_account

EMAIL, PASSWORD, NEW_PASSWORD = "andré@example.org", "pässwörd", "n3w pässwörd"


async def run(fn: Callable[[], Any]) -> Any:
    return await trio.to_thread.run_sync(fn)


def client(srv: AccountsServer, version: int) -> Client:
    return Client(srv.url, key_stretch_version=version)


async def account(srv: AccountsServer, email: str = EMAIL) -> store.AccountRow:
    row = await srv.db.read(lambda c: store.find_by_email(c, email))
    assert row is not None
    return row


@pytest.mark.parametrize("version", [1, 2])
async def test_create_login_keys_change_destroy(srv: AccountsServer, version: int) -> None:
    fxa = client(srv, version)
    created = await run(lambda: fxa.create_account(EMAIL, PASSWORD, keys=True))
    assert len(created.uid) == 32 and len(created.token) == 64
    _, kb_signup = await run(created.fetch_keys)
    assert (await account(srv)).key_stretch_version == version

    session = await run(lambda: fxa.login(EMAIL, PASSWORD, keys=True))
    assert session.verified is True and session.uid == created.uid
    ka, kb = await run(session.fetch_keys)
    assert len(ka) == 32 and kb == kb_signup
    again = await run(lambda: fxa.login(EMAIL, PASSWORD, keys=True))
    assert (await run(again.fetch_keys))[1] == kb
    await run(session.check_session_status)
    status = await run(session.get_email_status)
    assert status == {"email": EMAIL, "verified": True, "sessionVerified": True,
                      "emailVerified": True}

    # Password change keeps kB; the replacement session works, the other one is gone.
    await run(lambda: session.change_password(PASSWORD, NEW_PASSWORD))
    await run(session.check_session_status)
    with pytest.raises(ClientError) as gone:
        await run(again.check_session_status)
    assert gone.value.errno == 110
    after = await run(lambda: fxa.login(EMAIL, NEW_PASSWORD, keys=True))
    assert (await run(after.fetch_keys))[1] == kb
    with pytest.raises(ClientError) as old:
        await run(lambda: fxa.login(EMAIL, PASSWORD))
    assert old.value.errno == 103

    await run(after.destroy_session)
    with pytest.raises(ClientError) as destroyed:
        await run(after.check_session_status)
    assert destroyed.value.errno == 110

    # The other stretching version sees the same kB with the new password (a v2 client
    # upgrades a v1 account on the way, which replaces every session).
    other = client(srv, 3 - version)
    cross = await run(lambda: other.login(EMAIL, NEW_PASSWORD, keys=True))
    assert (await run(cross.fetch_keys))[1] == kb

    await run(lambda: fxa.destroy_account(EMAIL, NEW_PASSWORD))
    assert await srv.db.read(lambda c: store.find_by_email(c, EMAIL)) is None
    assert (await run(lambda: fxa.get_account_status(created.uid))) == {"exists": False}
    with pytest.raises(ClientError) as unknown:
        await run(lambda: fxa.login(EMAIL, NEW_PASSWORD))
    assert unknown.value.errno == 102


@pytest.mark.parametrize("version", [1, 2])
async def test_cli_made_account(srv: AccountsServer, version: int) -> None:
    """An account made with the store functions (as `foxden user add` makes it)."""
    row = await add_account(srv.db, EMAIL, PASSWORD, key_stretch=version)
    fxa = client(srv, version)
    session = await run(lambda: fxa.login(EMAIL, PASSWORD, keys=True))
    assert session.uid == row.uid
    _, kb = await run(session.fetch_keys)
    v1 = await run(lambda: client(srv, 1).login(EMAIL, PASSWORD, keys=True))
    assert (await run(v1.fetch_keys))[1] == kb
    await run(lambda: session.change_password(PASSWORD, NEW_PASSWORD))
    relog = await run(lambda: fxa.login(EMAIL, NEW_PASSWORD, keys=True))
    assert (await run(relog.fetch_keys))[1] == kb


async def test_v2_login_upgrades_a_v1_account(srv: AccountsServer) -> None:
    await add_account(srv.db, EMAIL, PASSWORD, key_stretch=1)
    v1 = await run(lambda: client(srv, 1).login(EMAIL, PASSWORD, keys=True))
    _, kb = await run(v1.fetch_keys)
    before = await account(srv)
    assert before.client_salt is None

    v2 = await run(lambda: client(srv, 2).login(EMAIL, PASSWORD, keys=True))
    after = await account(srv)
    assert after.key_stretch_version == 2 and after.client_salt is not None
    assert after.keys_changed_at == before.keys_changed_at  # kB unchanged, so no key change
    assert (await run(v2.fetch_keys))[1] == kb
    status = await run(lambda: client(srv, 2).apiclient.post(
        "/account/credentials/status", {"email": EMAIL}))
    assert status == {"currentVersion": "v2", "upgradeNeeded": False,
                      "clientSalt": after.client_salt}


async def test_v1_password_change_drops_the_stale_v2_verifier(srv: AccountsServer) -> None:
    await add_account(srv.db, EMAIL, PASSWORD, key_stretch=2)
    v1 = await run(lambda: client(srv, 1).login(EMAIL, PASSWORD, keys=True))
    _, kb = await run(v1.fetch_keys)
    await run(lambda: v1.change_password(PASSWORD, NEW_PASSWORD))
    assert (await account(srv)).client_salt is None
    with pytest.raises(ClientError) as old:
        await run(lambda: client(srv, 2).login(EMAIL, PASSWORD))
    assert old.value.errno == 103
    v2 = await run(lambda: client(srv, 2).login(EMAIL, NEW_PASSWORD, keys=True))
    assert (await run(v2.fetch_keys))[1] == kb


async def test_signup_closed_by_default(start_srv: Callable[..., Any]) -> None:
    closed = await start_srv()
    with pytest.raises(ClientError) as err:
        await run(lambda: client(closed, 1).create_account(EMAIL, PASSWORD))
    assert err.value.code == 400 and err.value.errno == 202


async def test_key_fetch_token_is_single_use(srv: AccountsServer) -> None:
    await add_account(srv.db, EMAIL, PASSWORD)
    session = await run(lambda: client(srv, 1).login(EMAIL, PASSWORD, keys=True))
    token, stretched = session._key_fetch_token, session.stretchpwd
    await run(session.fetch_keys)
    with pytest.raises(ClientError) as reused:
        await run(lambda: session.client.fetch_keys(token, stretched))
    assert reused.value.errno == 110
