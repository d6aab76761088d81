// The /v1/account/keys bundle and kB (firefox-signin.md §5 "Key fetch"). Pure: no DOM.
//
//   keyRequestKey           = token creds of the keyFetchToken, bytes [64:96]
//   respHMACkey‖respXORkey  = HKDF(keyRequestKey, salt="", NS+"account/keys", 96)  (32 ‖ 64)
//   bundle                  = hex(ct(64) ‖ mac(32)), mac = HMAC-SHA256(respHMACkey, ct)
//   kA‖wrapKB               = ct XOR respXORkey
//   kB                      = wrapKB XOR unwrapBKey

import { concat, constantTimeEqual, hexToBytes, xor } from "./bytes.js";
import { NAMESPACE, hkdf } from "./onepw.js";

const subtle = () => globalThis.crypto.subtle;

export class BundleError extends Error {}

async function hmacSha256(key, data) {
  const k = await subtle().importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return new Uint8Array(await subtle().sign("HMAC", k, data));
}

async function bundleKeys(keyRequestKey) {
  const out = await hkdf(keyRequestKey, `${NAMESPACE}account/keys`, 96);
  return { hmacKey: out.slice(0, 32), xorKey: out.slice(32, 96) };
}

/** keyRequestKey: Uint8Array(32); bundleHex: the `bundle` string. Returns {kA, wrapKB}. */
export async function unbundleKeys(keyRequestKey, bundleHex) {
  let raw;
  try {
    raw = hexToBytes(bundleHex);
  } catch {
    throw new BundleError("key bundle is not hex");
  }
  if (raw.length !== 96) {
    throw new BundleError("key bundle has the wrong length");
  }
  const ct = raw.slice(0, 64);
  const mac = raw.slice(64, 96);
  const { hmacKey, xorKey } = await bundleKeys(keyRequestKey);
  if (!constantTimeEqual(await hmacSha256(hmacKey, ct), mac)) {
    throw new BundleError("key bundle MAC mismatch");
  }
  const plain = xor(ct, xorKey);
  return { kA: plain.slice(0, 32), wrapKB: plain.slice(32, 64) };
}

/** The inverse, for tests and fakes. */
export async function bundle(keyRequestKey, kA, wrapKB) {
  const { hmacKey, xorKey } = await bundleKeys(keyRequestKey);
  const ct = xor(concat(kA, wrapKB), xorKey);
  return concat(ct, await hmacSha256(hmacKey, ct));
}

export function computeKB(wrapKB, unwrapBKey) {
  return xor(wrapKB, unwrapBKey);
}

/** wrapKB to store after a password change: kB XOR the new unwrapBKey. */
export function rewrapKB(kB, newUnwrapBKey) {
  return xor(kB, newUnwrapBKey);
}
