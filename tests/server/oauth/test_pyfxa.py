"""PyFxA 0.9 (fxa.oauth, fxa.profile) against the server: its exact requests.

PyFxA is synchronous (requests), so each call runs in a worker thread while the server
keeps serving on the Trio loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import trio
from fxa import core, errors, oauth, profile

from tests.conftest import LiveServer

from .helpers import DESKTOP, OLDSYNC, create_account

T = TypeVar("T")


async def run(fn: Callable[..., T], *args: Any, **kw: Any) -> T:
    return await trio.to_thread.run_sync(lambda: fn(*args, **kw))


def session_for(server: LiveServer, account) -> core.Session:  # type: ignore[no-untyped-def]
    client = core.Client(server.url + "/v1")
    return core.Session(client, account.email, b"\0" * 32, account.uid, account.session)


async def test_authorize_code_and_trade_code_with_pkce(server: LiveServer) -> None:
    account = await create_account(server)
    # cache=None, not False: PyFxA 0.9 tests "is not None" and would call False.get().
    client = oauth.Client(DESKTOP, server_url=server.url + "/v1", cache=None)
    challenge, verifier = client.generate_pkce_challenge()
    code = await run(client.authorize_code, session_for(server, account), "profile",
                     **challenge)
    assert len(code) == 64
    tokens = await run(client.trade_code, code, **verifier)
    assert tokens["scope"] == "profile" and tokens["token_type"] == "bearer"
    # A second trade fails the way PyFxA reports server errors.
    with pytest.raises(errors.ClientError):
        await run(client.trade_code, code, **verifier)
    assert (await run(client.get_client_metadata))["name"] == "Firefox"


async def test_authorize_token_verify_and_destroy(server: LiveServer) -> None:
    account = await create_account(server)
    client = oauth.Client(DESKTOP, server_url=server.url, cache=None)  # PyFxA adds /v1
    session = session_for(server, account)
    token = await run(client.authorize_token, session, f"profile {OLDSYNC}")

    # verify_token checks the JWT against /v1/jwks ...
    info = await run(client.verify_token, token, "profile")
    assert info["user"] == account.uid and info["client_id"] == DESKTOP
    assert set(info["scope"]) == {"profile", OLDSYNC}
    assert info["generation"] == account.verifier_set_at
    with pytest.raises(errors.ScopeMismatchError):
        await run(client.verify_token, token, "profile:write")
    # ... and with no usable key it falls back to POST /v1/verify.
    remote = oauth.Client(DESKTOP, server_url=server.url, cache=None, jwks=[])
    info = await run(remote.verify_token, token)
    assert info["user"] == account.uid and set(info["scope"]) == {"profile", OLDSYNC}

    # PyFxA's profile client reads /v1/profile with it.
    prof = profile.Client(server.url)
    body = await run(prof.get_profile, token)
    assert body["uid"] == account.uid and body["email"] == account.email
    assert body["avatar"].endswith(f"/v1/avatar/{account.uid}.svg")
    assert await run(prof.get_email, token) == account.email
    assert await run(prof.get_uid, token) == account.uid
    assert (await run(prof.get_avatar_url, token)).endswith(".svg")

    await run(client.destroy_token, token)
    with pytest.raises(errors.ClientError):
        await run(remote.verify_token, token)
    with pytest.raises(errors.ClientError):
        await run(prof.get_profile, token)
    # Destroying again is still fine.
    await run(client.destroy_token, token)


async def test_pyfxa_bad_session(server: LiveServer) -> None:
    account = await create_account(server)
    account.session = "00" * 32
    client = oauth.Client(DESKTOP, server_url=server.url, cache=None)
    with pytest.raises(errors.ClientError) as info:
        await run(client.authorize_token, session_for(server, account), "profile")
    assert info.value.errno == 110
