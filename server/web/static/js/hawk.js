// HAWK request signing as Firefox does it (firefox-signin.md §3.5). Pure: no DOM.
//
//   normalized = "hawk.1.header\n" ts "\n" nonce "\n" METHOD "\n" path?query "\n" lower(host) "\n"
//                port "\n" hash "\n" ext "\n"                (ext is always empty here)
//   mac        = b64(HMAC-SHA256(key, normalized))
//   hash       = b64(SHA-256("hawk.1.payload\n" + mime + "\n" + body + "\n")), mime without
//                parameters; sent on every POST to the auth server, never on GET.
//   header     = Hawk id="…", ts="…", nonce="…", [hash="…", ]mac="…"

import { b64encode, randomBytes, utf8 } from "./bytes.js";

const subtle = () => globalThis.crypto.subtle;

export function bareMime(contentType) {
  return String(contentType || "").split(";", 1)[0].trim().toLowerCase();
}

export async function payloadHash(contentType, body) {
  const data = utf8(`hawk.1.payload\n${bareMime(contentType)}\n${body}\n`);
  return b64encode(new Uint8Array(await subtle().digest("SHA-256", data)));
}

export function normalizedString({ ts, nonce, method, resource, host, port, hash = "", ext = "" }) {
  return `hawk.1.header\n${ts}\n${nonce}\n${method.toUpperCase()}\n${resource}\n` +
    `${String(host).toLowerCase()}\n${port}\n${hash}\n${ext}\n`;
}

export async function computeMac(key, normalized) {
  const k = await subtle().importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return b64encode(new Uint8Array(await subtle().sign("HMAC", k, utf8(normalized))));
}

export function newNonce() {
  return b64encode(randomBytes(8));
}

/**
 * credentials: {id: hex string, key: Uint8Array}. resource: "/path?query" exactly as sent.
 * opts: {ts (unix seconds), nonce, payload (string body), contentType}. A payload hash is
 * included iff opts.payload is a string.
 * Returns {header, artifacts} (artifacts carry ts/nonce/hash/mac for tests and logs).
 */
export async function sign(credentials, method, resource, host, port, opts = {}) {
  const ts = opts.ts ?? Math.floor(Date.now() / 1000);
  const nonce = opts.nonce ?? newNonce();
  const hash = typeof opts.payload === "string" ? await payloadHash(opts.contentType, opts.payload) : "";
  const artifacts = { ts: String(ts), nonce, method, resource, host, port: String(port), hash, ext: "" };
  const mac = await computeMac(credentials.key, normalizedString(artifacts));
  let header = `Hawk id="${credentials.id}", ts="${artifacts.ts}", nonce="${nonce}"`;
  if (hash) {
    header += `, hash="${hash}"`;
  }
  header += `, mac="${mac}"`;
  return { header, artifacts: { ...artifacts, mac } };
}

/** Host and port for the normalized string from a URL (IPv6 brackets dropped, default ports). */
export function hostPort(url) {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  const port = u.port || (u.protocol === "https:" ? "443" : "80");
  return { host, port };
}
