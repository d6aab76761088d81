// onepw client side (key-stretch v1) and FxA token credentials, via WebCrypto only.
// Pure: no DOM. Spec: firefox-signin.md §5 (stretch, authPW, unwrapBKey) and §3.5 (tokens).
//
//   quickStretchedPW = PBKDF2-SHA256(UTF-8(password), "identity.mozilla.com/picl/v1/quickStretch:" + email, 1000, 32)
//   authPW           = HKDF-SHA256(quickStretchedPW, salt="", info=NS+"authPW", 32)      -> sent as hex
//   unwrapBKey       = HKDF-SHA256(quickStretchedPW, salt="", info=NS+"unwrapBkey", 32)  -> never leaves the page
//   token creds      = HKDF-SHA256(token, salt="", info=NS+kind, 96) -> id=hex[0:32], key=[32:64], extra=[64:96]

import { bytesToHex, hexToBytes, utf8 } from "./bytes.js";

export const NAMESPACE = "identity.mozilla.com/picl/v1/";
export const PBKDF2_ITERATIONS = 1000;

const subtle = () => globalThis.crypto.subtle;

export async function hkdf(ikm, info, length, salt = new Uint8Array(0)) {
  const base = await subtle().importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await subtle().deriveBits(
    { name: "HKDF", hash: "SHA-256", salt, info: typeof info === "string" ? utf8(info) : info },
    base,
    length * 8,
  );
  return new Uint8Array(bits);
}

export async function quickStretch(email, password) {
  const base = await subtle().importKey("raw", utf8(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await subtle().deriveBits(
    {
      name: "PBKDF2",
      hash: "SHA-256",
      salt: utf8(`${NAMESPACE}quickStretch:${email}`),
      iterations: PBKDF2_ITERATIONS,
    },
    base,
    256,
  );
  return new Uint8Array(bits);
}

export async function deriveAuthPW(quickStretched) {
  return hkdf(quickStretched, `${NAMESPACE}authPW`, 32);
}

export async function deriveUnwrapBKey(quickStretched) {
  // Lower-case "k" in the info string, as in Mozilla's protocol.
  return hkdf(quickStretched, `${NAMESPACE}unwrapBkey`, 32);
}

/** {authPW: hex string for the server, unwrapBKey: Uint8Array kept in memory}. */
export async function deriveCredentials(email, password) {
  const qs = await quickStretch(email, password);
  const [authPW, unwrapBKey] = await Promise.all([deriveAuthPW(qs), deriveUnwrapBKey(qs)]);
  return { authPW: bytesToHex(authPW), unwrapBKey };
}

/** HAWK credentials of an FxA token (hex), kind "sessionToken" | "keyFetchToken" | ... */
export async function deriveTokenCredentials(tokenHex, kind) {
  const out = await hkdf(hexToBytes(tokenHex), `${NAMESPACE}${kind}`, 96);
  return { id: bytesToHex(out.slice(0, 32)), key: out.slice(32, 64), extra: out.slice(64, 96) };
}
