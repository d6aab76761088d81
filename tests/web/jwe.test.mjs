// keys_jwe: ECDH-ES + A256GCM compact JWE, empty encrypted key, no apu/apv.
import { test } from "node:test";
import assert from "node:assert/strict";
import { load, onepw, vectors } from "./helpers.mjs";

const { b64urlDecode, b64urlEncode, concat, fromUtf8, hexToBytes, utf8 } = await load("bytes.js");
const jwe = await load("jwe.js");
const subtle = globalThis.crypto.subtle;
const ECDH = { name: "ECDH", namedCurve: "P-256" };

// PKCS#8 for a P-256 private key without the optional public key; WebCrypto derives x/y.
const PKCS8_PREFIX = hexToBytes("308141020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420");

async function keyFromD(dHex) {
  const key = await subtle.importKey("pkcs8", concat(PKCS8_PREFIX, hexToBytes(dHex)), ECDH, true, ["deriveBits"]);
  const jwk = await subtle.exportKey("jwk", key);
  return { privateKey: key, jwk, publicJwk: { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y } };
}

/** keys_jwk exactly as Firefox puts it in the URL (§2.1). */
function firefoxKeysJwk(pub) {
  return b64urlEncode(utf8(JSON.stringify({ crv: "P-256", ext: true, key_ops: [], kty: "EC", x: pub.x, y: pub.y })));
}

test("decrypts Mozilla's keys_jwe vector (application-services scoped_keys.rs)", async () => {
  const v = vectors("keys-jwe.json");
  const plain = await jwe.decrypt(v.keys_jwe, v.recipient_private_jwk);
  assert.equal(fromUtf8(plain), v.expected_plaintext);
});

for (const v of onepw("build_keys_jwe")) {
  test(`builder reproduces the pinned vector byte for byte: ${v.name}`, async () => {
    const recipient = await keyFromD(v.input.recipient_d);
    assert.equal(recipient.jwk.x, v.input.recipient_jwk_json.x);
    assert.equal(recipient.jwk.y, v.input.recipient_jwk_json.y);
    const ephemeral = await keyFromD(v.input.ephemeral_d);
    const out = await jwe.encrypt(firefoxKeysJwk(recipient.publicJwk), utf8(v.input.plaintext_utf8),
      { ephemeral, iv: hexToBytes(v.input.iv) });
    assert.equal(out, v.output.keys_jwe_utf8);
    assert.equal(fromUtf8(await jwe.decrypt(out, recipient.jwk)), v.input.plaintext_utf8);
  });
}

test("round trip with an ephemeral recipient, in Firefox's format", async () => {
  const pair = await subtle.generateKey(ECDH, true, ["deriveBits"]);
  const priv = await subtle.exportKey("jwk", pair.privateKey);
  const pub = await subtle.exportKey("jwk", pair.publicKey);
  const scoped = { "https://identity.mozilla.com/apps/oldsync": { kty: "oct", scope: "https://identity.mozilla.com/apps/oldsync", k: "AAAA", kid: "1700000000123-AAAA" } };
  const out = await jwe.buildKeysJwe(firefoxKeysJwk(pub), scoped);

  const parts = out.split(".");
  assert.equal(parts.length, 5);
  assert.equal(parts[1], "", "encrypted-key part must be empty");
  for (const part of parts) {
    assert.match(part, /^[A-Za-z0-9_-]*$/, "base64url without padding");
  }
  const header = JSON.parse(fromUtf8(b64urlDecode(parts[0])));
  assert.deepEqual(Object.keys(header).sort(), ["alg", "enc", "epk"]);
  assert.equal(header.alg, "ECDH-ES");
  assert.equal(header.enc, "A256GCM");
  assert.deepEqual(Object.keys(header.epk).sort(), ["crv", "kty", "x", "y"]);
  assert.equal(b64urlDecode(parts[2]).length, 12);
  assert.equal(b64urlDecode(parts[4]).length, 16);
  assert.deepEqual(JSON.parse(fromUtf8(await jwe.decrypt(out, priv))), scoped);

  // Each build uses a fresh ephemeral key and IV.
  const again = await jwe.buildKeysJwe(firefoxKeysJwk(pub), scoped);
  assert.notEqual(again.split(".")[0], parts[0]);
});

test("tampering with the header, IV, ciphertext or tag fails decryption", async () => {
  const pair = await subtle.generateKey(ECDH, true, ["deriveBits"]);
  const priv = await subtle.exportKey("jwk", pair.privateKey);
  const pub = await subtle.exportKey("jwk", pair.publicKey);
  const out = await jwe.buildKeysJwe(pub, { a: "b" });
  const parts = out.split(".");
  for (const i of [2, 3, 4]) {
    const copy = [...parts];
    const bytes = b64urlDecode(copy[i]);
    bytes[0] ^= 1;
    copy[i] = b64urlEncode(bytes);
    await assert.rejects(jwe.decrypt(copy.join("."), priv));
  }
  const header = JSON.parse(fromUtf8(b64urlDecode(parts[0])));
  header.kid = "x";
  const swapped = [b64urlEncode(utf8(JSON.stringify(header))), ...parts.slice(1)].join(".");
  await assert.rejects(jwe.decrypt(swapped, priv), "the header is the AAD");
});

test("keys_jwk parsing: ignores ext/key_ops, refuses anything but a P-256 public key", () => {
  assert.deepEqual(jwe.parseKeysJwk(firefoxKeysJwk({ x: "xx", y: "yy" })), { kty: "EC", crv: "P-256", x: "xx", y: "yy" });
  assert.throws(() => jwe.parseKeysJwk("not base64url!"), jwe.JweError);
  assert.throws(() => jwe.parseKeysJwk(b64urlEncode(utf8('{"kty":"RSA"}'))), jwe.JweError);
  assert.throws(() => jwe.parseKeysJwk(b64urlEncode(utf8('{"kty":"EC","crv":"P-384","x":"a","y":"b"}'))), jwe.JweError);
});
