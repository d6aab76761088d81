// keys_jwe: JWE compact serialization, ECDH-ES (direct) + A256GCM (firefox-signin.md §3.3).
// Pure: no DOM.
//
//   header = {"alg":"ECDH-ES","enc":"A256GCM","epk":{kty,crv,x,y}}   (no apu/apv: Firefox rejects them)
//   Z      = ECDH(ephemeral private, recipient public from keys_jwk), 32 bytes
//   CEK    = SHA-256(00000001 ‖ Z ‖ 00000007 ‖ "A256GCM" ‖ 00000000 ‖ 00000000 ‖ 00000100)
//   out    = b64u(header) "." "" "." b64u(iv12) "." b64u(ciphertext) "." b64u(tag16)
//   AAD    = ASCII(b64u(header))

import { b64urlDecode, b64urlEncode, concat, fromUtf8, randomBytes, uint32be, utf8 } from "./bytes.js";

const subtle = () => globalThis.crypto.subtle;
const ECDH = { name: "ECDH", namedCurve: "P-256" };

export class JweError extends Error {}

/** keys_jwk as Firefox sends it (b64url of a JSON JWK), or an already parsed object. */
export function parseKeysJwk(keysJwk) {
  let jwk = keysJwk;
  if (typeof keysJwk === "string") {
    try {
      jwk = JSON.parse(fromUtf8(b64urlDecode(keysJwk)));
    } catch {
      throw new JweError("keys_jwk is not base64url JSON");
    }
  }
  if (!jwk || jwk.kty !== "EC" || jwk.crv !== "P-256" || !jwk.x || !jwk.y) {
    throw new JweError("keys_jwk is not a P-256 EC public key");
  }
  // Only the key itself: Firefox's `ext` and empty `key_ops` would upset importKey.
  return { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y };
}

async function concatKdf(z) {
  const enc = utf8("A256GCM");
  const input = concat(
    uint32be(1), z, uint32be(enc.length), enc, uint32be(0), uint32be(0), uint32be(256),
  );
  return new Uint8Array(await subtle().digest("SHA-256", input));
}

async function agree(privateKey, publicKey) {
  return new Uint8Array(await subtle().deriveBits({ name: "ECDH", public: publicKey }, privateKey, 256));
}

/**
 * Encrypt plaintext bytes to the recipient's public JWK; returns the compact JWE.
 * testing: {ephemeral: {privateKey, publicJwk}, iv} pins the random parts (vectors only).
 */
export async function encrypt(recipientJwk, plaintext, testing = {}) {
  const recipient = await subtle().importKey("jwk", parseKeysJwk(recipientJwk), ECDH, false, []);
  let eph;
  let epk;
  if (testing.ephemeral) {
    eph = { privateKey: testing.ephemeral.privateKey };
    epk = testing.ephemeral.publicJwk;
  } else {
    eph = await subtle().generateKey(ECDH, true, ["deriveBits"]);
    epk = await subtle().exportKey("jwk", eph.publicKey);
  }
  const header = { alg: "ECDH-ES", enc: "A256GCM", epk: { kty: "EC", crv: "P-256", x: epk.x, y: epk.y } };
  const protectedB64 = b64urlEncode(utf8(JSON.stringify(header)));
  const cek = await subtle().importKey("raw", await concatKdf(await agree(eph.privateKey, recipient)),
    "AES-GCM", false, ["encrypt"]);
  const iv = testing.iv || randomBytes(12);
  const sealed = new Uint8Array(await subtle().encrypt(
    { name: "AES-GCM", iv, additionalData: utf8(protectedB64), tagLength: 128 }, cek, plaintext,
  ));
  const ct = sealed.slice(0, sealed.length - 16);
  const tag = sealed.slice(sealed.length - 16);
  return [protectedB64, "", b64urlEncode(iv), b64urlEncode(ct), b64urlEncode(tag)].join(".");
}

/** Decrypt a compact ECDH-ES/A256GCM JWE with a private JWK (tests, and as a self-check). */
export async function decrypt(compact, privateJwk) {
  const parts = String(compact).split(".");
  if (parts.length !== 5 || parts[1] !== "") {
    throw new JweError("not a compact ECDH-ES JWE with an empty encrypted key");
  }
  const [protectedB64, , ivB64, ctB64, tagB64] = parts;
  const header = JSON.parse(fromUtf8(b64urlDecode(protectedB64)));
  if (header.alg !== "ECDH-ES" || header.enc !== "A256GCM" || header.apu || header.apv) {
    throw new JweError("unsupported JWE header");
  }
  const priv = await subtle().importKey(
    "jwk",
    { kty: "EC", crv: "P-256", x: privateJwk.x, y: privateJwk.y, d: privateJwk.d },
    ECDH, false, ["deriveBits"],
  );
  const epk = await subtle().importKey("jwk", parseKeysJwk(header.epk), ECDH, false, []);
  const cek = await subtle().importKey("raw", await concatKdf(await agree(priv, epk)),
    "AES-GCM", false, ["decrypt"]);
  const iv = b64urlDecode(ivB64);
  const plain = await subtle().decrypt(
    { name: "AES-GCM", iv, additionalData: utf8(protectedB64), tagLength: 128 },
    cek, concat(b64urlDecode(ctB64), b64urlDecode(tagB64)),
  );
  return new Uint8Array(plain);
}

/** keys_jwe for /v1/oauth/authorization: scopedKeys {scope: jwk} encrypted to keys_jwk. */
export async function buildKeysJwe(keysJwk, scopedKeys) {
  return encrypt(keysJwk, utf8(JSON.stringify(scopedKeys)));
}
