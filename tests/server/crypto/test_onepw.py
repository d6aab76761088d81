"""onepw and keys_jwe against tests/vectors/onepw.json and the shared keys_jwe vector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from server.crypto import fxatokens, onepw

ROOT = Path(__file__).resolve().parents[3]
VECTORS = json.loads((ROOT / "tests/vectors/onepw.json").read_text(encoding="utf-8"))["vectors"]
# A byte-identical copy of shared/vectors/keys-jwe-vector.json (application-services).
SHARED_JWE = Path(__file__).resolve().parents[2] / "vectors" / "keys-jwe.json"
H = bytes.fromhex


def _vectors(function: str) -> list[dict[str, Any]]:
    found = [v for v in VECTORS if v["function"] == function]
    assert found, function
    return found


@pytest.mark.parametrize("v", _vectors("client_credentials_v1"), ids=lambda v: v["name"])
def test_client_v1(v: dict[str, Any]) -> None:
    c = onepw.client_credentials_v1(v["input"]["email_utf8"], v["input"]["password_utf8"])
    out = v["output"]
    assert c.auth_pw.hex() == out["authPW"]
    assert c.unwrap_b_key.hex() == out["unwrapBKey"]
    assert c.stretched.hex() == out["quickStretchedPW"]


@pytest.mark.parametrize("v", _vectors("client_credentials_v2"), ids=lambda v: v["name"])
def test_client_v2(v: dict[str, Any]) -> None:
    c = onepw.client_credentials_v2(v["input"]["client_salt_utf8"], v["input"]["password_utf8"])
    assert c.auth_pw.hex() == v["output"]["authPW"]
    assert c.unwrap_b_key.hex() == v["output"]["unwrapBKey"]


@pytest.mark.parametrize("v", _vectors("stretch_auth_pw"), ids=lambda v: v["name"])
def test_server_stretch(v: dict[str, Any]) -> None:
    s = onepw.stretch_auth_pw(H(v["input"]["authPW"]), H(v["input"]["authSalt"]))
    assert s.value.hex() == v["output"]["bigStretchedPW"]
    assert s.verify_hash.hex() == v["output"]["verifyHash"]
    assert s.wrapwrap_key.hex() == v["output"]["wrapwrapKey"]
    assert s.matches(H(v["output"]["verifyHash"]))
    assert not s.matches(bytes(32))


def test_unwrap_kb() -> None:
    (v,) = _vectors("unwrap_kb")
    wrapped = onepw.xor(H(v["input"]["wrapwrapKey"]), H(v["input"]["wrapWrapKb"]))
    assert wrapped.hex() == v["output"]["wrapKb"]
    kb = onepw.unwrap_kb(wrapped, H(v["input"]["unwrapBKey"]))
    assert kb.hex() == v["output"]["kB"]
    assert onepw.wrap_kb(kb, H(v["input"]["unwrapBKey"])) == wrapped


@pytest.mark.parametrize("v", _vectors("token_and_bundle"), ids=lambda v: v["name"])
def test_token_and_bundle(v: dict[str, Any]) -> None:
    inp, out = v["input"], v["output"]
    kind = inp["kind_utf8"]
    creds = fxatokens.derive(H(inp[kind]), kind)
    assert creds.id == out["tokenId"]
    assert creds.hawk_key.hex() == out["hawkKey"]
    if "bundle" in out:
        assert creds.extra.hex() == out["keyRequestKey"]
        keys = onepw.hkdf(creds.extra, "account/keys", 96)
        assert keys[:32].hex() == out["respHMACkey"] and keys[32:].hex() == out["respXORkey"]
        bundle = onepw.bundle_keys(creds.extra, H(inp["kA"]), H(inp["wrapKb"]))
        assert bundle.hex() == out["bundle"]
        assert onepw.unbundle_keys(creds.extra, bundle) == (H(inp["kA"]), H(inp["wrapKb"]))


def test_unbundle_vector_and_tamper() -> None:
    (v,) = _vectors("unbundle_keys")
    key, bundle = H(v["input"]["keyRequestKey"]), H(v["input"]["bundle"])
    ka, wrapped = onepw.unbundle_keys(key, bundle)
    assert (ka.hex(), wrapped.hex()) == (v["output"]["kA"], v["output"]["wrapKb"])
    bad = bytearray(bundle)
    bad[3] ^= 1
    with pytest.raises(onepw.OnepwError):
        onepw.unbundle_keys(key, bytes(bad))
    with pytest.raises(onepw.OnepwError):
        onepw.unbundle_keys(key, bundle[:-1])


@pytest.mark.parametrize("v", _vectors("oldsync_jwk"), ids=lambda v: v["name"])
def test_oldsync(v: dict[str, Any]) -> None:
    kb = H(v["input"]["kB"])
    jwk = onepw.oldsync_jwk(kb, v["input"]["keyRotationTimestamp_json"])
    assert jwk["k"] == v["output"]["k_b64u"]
    assert jwk["kid"] == v["output"]["kid_utf8"]
    assert jwk["kty"] == "oct" and jwk["scope"] == onepw.OLDSYNC_SCOPE
    if "clientState" in v["output"]:
        assert onepw.client_state(kb).hex() == v["output"]["clientState"]


def test_client_state() -> None:
    (v,) = _vectors("client_state")
    assert onepw.client_state(H(v["input"]["kB"])).hex() == v["output"]["clientState"]


def test_deterministic_keys_jwe() -> None:
    (v,) = _vectors("build_keys_jwe")
    inp = v["input"]
    recipient = ec.derive_private_key(int(inp["recipient_d"], 16), ec.SECP256R1())
    eph = ec.derive_private_key(int(inp["ephemeral_d"], 16), ec.SECP256R1())
    assert onepw.public_jwk(recipient.public_key()) == inp["recipient_jwk_json"]
    jwe = onepw.build_keys_jwe(inp["recipient_jwk_json"], inp["plaintext_utf8"].encode(),
                               ephemeral=eph, iv=H(inp["iv"]))
    assert jwe == v["output"]["keys_jwe_utf8"]
    assert onepw.decrypt_keys_jwe(recipient, jwe).decode() == inp["plaintext_utf8"]


def test_shared_keys_jwe_vector_decrypts() -> None:
    v = json.loads(SHARED_JWE.read_text())
    key = onepw.private_key_from_jwk(v["recipient_private_jwk"])
    assert onepw.decrypt_keys_jwe(key, v["keys_jwe"]).decode() == v["expected_plaintext"]


def test_keys_jwe_round_trip_and_format() -> None:
    recipient = ec.generate_private_key(ec.SECP256R1())
    peer = {**onepw.public_jwk(recipient.public_key()), "ext": True, "key_ops": [],
            "kid": "abc"}
    jwe = onepw.build_keys_jwe(peer, b'{"a":1}')
    parts = jwe.split(".")
    assert len(parts) == 5 and parts[1] == "" and all("=" not in p for p in parts)
    header = json.loads(onepw.b64u_decode(parts[0]))
    assert header["alg"] == "ECDH-ES" and header["enc"] == "A256GCM" and header["kid"] == "abc"
    assert "apu" not in header and "apv" not in header
    assert onepw.decrypt_keys_jwe(recipient, jwe) == b'{"a":1}'
    wrong = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(onepw.OnepwError):
        onepw.decrypt_keys_jwe(wrong, jwe)
    with pytest.raises(onepw.OnepwError):
        onepw.decrypt_keys_jwe(recipient, ".".join([parts[0], "AAAA", *parts[2:]]))
    tampered = parts[3][:-2] + ("AA" if parts[3][-2:] != "AA" else "BB")
    with pytest.raises(onepw.OnepwError):
        onepw.decrypt_keys_jwe(recipient, ".".join([*parts[:3], tampered, parts[4]]))


def test_parse_keys_jwk() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = {"crv": "P-256", "ext": True, "key_ops": [], "kty": "EC",
           **{k: v for k, v in onepw.public_jwk(key.public_key()).items() if k in "xy"}}
    encoded = onepw.b64u_encode(json.dumps(jwk).encode())
    assert onepw.parse_keys_jwk(encoded)["x"] == jwk["x"]
    for bad in ["", "!!", encoded + "=", onepw.b64u_encode(b'{"kty":"RSA"}'),
                onepw.b64u_encode(json.dumps({**jwk, "y": jwk["x"]}).encode())]:
        with pytest.raises(onepw.OnepwError):
            onepw.parse_keys_jwk(bad)


def test_client_salt_validation() -> None:
    salt = onepw.new_client_salt()
    assert onepw.parse_client_salt(salt) == salt
    for bad in [None, 5, "", salt.upper(), salt + "0", salt.replace("V2", ""),
                onepw.V2_SALT_PREFIX + "g" * 32]:
        with pytest.raises(onepw.OnepwError):
            onepw.parse_client_salt(bad)


def test_pyfxa_agrees_on_stretching() -> None:
    fxa_crypto = pytest.importorskip("fxa.crypto")
    email, pw = "andré@example.org", "pässwörd"
    assert fxa_crypto.quick_stretch_password(email, pw) == onepw.quick_stretch_v1(email, pw)
    salt = onepw.new_client_salt()
    assert fxa_crypto.stretch_password(salt, pw) == onepw.quick_stretch_v2(salt, pw)
