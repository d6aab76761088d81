"""The relay framing of appliance/pairing/channel.py (sans-IO parts) and the CLI's URL rules."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace

import pytest

from appliance.pairing import channel, command

REC = bytes(range(7))


@pytest.mark.parametrize(("origin", "url"), [
    ("https://foxden.local", "wss://foxden.local/v1/ws/"),
    ("https://foxden.local:8443/some/path?q", "wss://foxden.local:8443/v1/ws/"),
    ("http://127.0.0.1:8000/", "ws://127.0.0.1:8000/v1/ws/"),
    ("wss://relay.example", "wss://relay.example/v1/ws/"),
])
def test_ws_url_is_absolute_like_fpc(origin: str, url: str) -> None:
    assert channel.ws_url(origin) == url


@pytest.mark.parametrize("origin", ["ftp://x", "foxden.local", "https://"])
def test_ws_url_rejects_non_http(origin: str) -> None:
    with pytest.raises(ValueError):
        channel.ws_url(origin)


def test_records_go_out_padded_and_come_back_either_way() -> None:
    text = channel.encode_record(REC)
    assert text == base64.urlsafe_b64encode(REC).decode() and text.endswith("=")
    for message in (text, text.rstrip("="), f"  {text}\n"):
        frame = channel.decode_frame(json.dumps({"message": message, "sender": {}}))
        assert frame.record == REC


def test_oversized_record_is_refused() -> None:
    with pytest.raises(ValueError):
        channel.encode_record(bytes(channel.MAX_FRAME_CHARS))


def test_sender_keeps_only_known_string_keys() -> None:
    frame = channel.decode_frame(json.dumps({"message": "AAEC", "sender": {
        "ua": "x" * 600, "remote": "10.0.0.2", "city": 3, "country": "", "evil": "y"}}))
    assert frame.sender == {"ua": "x" * 512, "remote": "10.0.0.2"}
    assert channel.decode_frame(json.dumps({"message": "AAEC"})).sender == {}
    assert channel.decode_frame(json.dumps({"message": "AAEC", "sender": "no"})).sender == {}


@pytest.mark.parametrize("text", [
    b'{"message": "AAEC"}', "not json", "[]", json.dumps({"sender": {}}),
    json.dumps({"message": 5}), json.dumps({"message": "a+b/"}), json.dumps({"message": ""}),
    json.dumps({"message": "A"}), json.dumps({"message": "A" * 40_000}),
])
def test_bad_frames_are_protocol_errors(text: str | bytes) -> None:
    with pytest.raises(channel.RelayProtocolError):
        channel.decode_frame(text)


def test_greeting() -> None:
    g = channel.parse_greeting(json.dumps({"link": "/v1/ws/" + "a" * 22, "channelid": "a" * 22}))
    assert (g.channel_id, g.link) == ("a" * 22, "/v1/ws/" + "a" * 22)
    assert channel.parse_greeting(json.dumps({"channelid": "b" * 22})).link == "/v1/ws/" + "b" * 22
    for bad in ({"channelId": "a" * 22}, {"channelid": "a" * 21}, {"channelid": "a/" * 11}):
        with pytest.raises(channel.RelayProtocolError):
            channel.parse_greeting(json.dumps(bad))


def test_ssl_context_trusts_only_the_given_ca(tmp_path: object) -> None:
    from appliance import tls

    ca = tls.ensure_ca(tmp_path, "box")  # type: ignore[arg-type]
    ctx = channel.ssl_context(tmp_path / "ca.pem")  # type: ignore[operator]
    assert len(ctx.get_ca_certs()) == 1 and ca is not None
    assert ctx.check_hostname


@pytest.mark.parametrize(("explicit", "config", "url"), [
    ("https://box.example:8443/", {}, "https://box.example:8443"),
    (None, {"public_url": "https://sync.home"}, "https://sync.home"),
    (None, {"tls": "off", "listen": "127.0.0.1:9000"}, "http://127.0.0.1:9000"),
    (None, {"tls": "off"}, "http://127.0.0.1:8000"),
    (None, {"public_name": "fox.lan", "listen": "0.0.0.0:8443"}, "https://fox.lan:8443"),
    (None, {"public_name": "fox.lan", "listen": "0.0.0.0:443"}, "https://fox.lan"),
])
def test_public_url_resolution(explicit: str | None, config: dict, url: str) -> None:
    cfg = SimpleNamespace(**{"public_url": None, "listen": "", "tls": "on", "public_name": "",
                             **config})
    assert command.resolve_public_url(explicit, cfg) == url


def test_public_url_default_is_the_mdns_name() -> None:
    cfg = SimpleNamespace(public_url=None, listen="", tls="on", public_name="")
    assert command.resolve_public_url(None, cfg).endswith(".local")


def test_public_url_must_be_http() -> None:
    with pytest.raises(command.PairError):
        command.resolve_public_url("foxden.local", SimpleNamespace())
