// Scoped keys from kB and /v1/account/scoped-key-data (firefox-signin.md §3.3). Pure: no DOM.
//
// oldsync (legacy derivation, what Firefox Sync uses):
//   k   = b64u(HKDF(kB, salt="", "identity.mozilla.com/picl/v1/oldsync", 64))
//   kid = "<keyRotationTimestamp, 13-digit ms>-" + b64u(SHA-256(kB)[0:16])
// other key-bearing scopes (not used by Firefox Sync; kept for completeness):
//   out = HKDF(kB ‖ keyRotationSecret, salt=uid bytes, NS+"scoped_key\n"+identifier, 48)
//   kid = round(ts/1000) + "-" + b64u(out[0:16]), k = b64u(out[16:48])

import { b64urlEncode, concat, hexToBytes } from "./bytes.js";
import { NAMESPACE, hkdf } from "./onepw.js";

export const OLDSYNC_SCOPE = "https://identity.mozilla.com/apps/oldsync";

export async function deriveOldsyncKey(kB, keyRotationTimestamp) {
  const ts = Number(keyRotationTimestamp);
  if (!Number.isSafeInteger(ts) || ts <= 0) {
    throw new TypeError("keyRotationTimestamp must be a positive integer (ms)");
  }
  const k = await hkdf(kB, `${NAMESPACE}oldsync`, 64);
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", kB));
  return {
    kty: "oct",
    scope: OLDSYNC_SCOPE,
    k: b64urlEncode(k),
    kid: `${ts}-${b64urlEncode(digest.slice(0, 16))}`,
  };
}

export async function deriveScopedKey(kB, uidHex, scope, data) {
  const secret = hexToBytes(data.keyRotationSecret);
  const out = await hkdf(
    concat(kB, secret),
    `${NAMESPACE}scoped_key\n${data.identifier}`,
    48,
    hexToBytes(uidHex),
  );
  return {
    kty: "oct",
    scope,
    k: b64urlEncode(out.slice(16, 48)),
    kid: `${Math.round(Number(data.keyRotationTimestamp) / 1000)}-${b64urlEncode(out.slice(0, 16))}`,
  };
}

/**
 * The keys_jwe plaintext: {scope: {kty, scope, k, kid}} for every key-bearing scope the
 * server returned from scoped-key-data (a map scope -> {identifier, keyRotationSecret,
 * keyRotationTimestamp}).
 */
export async function buildScopedKeys(kB, uidHex, scopedKeyData) {
  const out = {};
  for (const [scope, data] of Object.entries(scopedKeyData || {})) {
    if (scope === OLDSYNC_SCOPE || data.identifier === OLDSYNC_SCOPE) {
      out[scope] = { ...(await deriveOldsyncKey(kB, data.keyRotationTimestamp)), scope };
    } else {
      out[scope] = await deriveScopedKey(kB, uidHex, scope, data);
    }
  }
  return out;
}
