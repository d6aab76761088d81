// HAWK header / MAC / payload hash against tests/vectors/hawk.json, which server/crypto/hawk.py
// reproduces too (tests/server/crypto/test_hawk_vectors.py).
import { test } from "node:test";
import assert from "node:assert/strict";
import { load, vectors } from "./helpers.mjs";

const { hexToBytes } = await load("bytes.js");
const hawk = await load("hawk.js");
const { deriveTokenCredentials } = await load("onepw.js");

const { vectors: cases } = vectors("hawk.json");

test("there are HAWK vectors, with and without payload hashes", () => {
  assert.ok(cases.some((v) => v.expected.hash));
  assert.ok(cases.some((v) => !v.expected.hash));
});

for (const v of cases) {
  test(`HAWK: ${v.name}`, async () => {
    let creds = { id: v.id, key: hexToBytes(v.key) };
    if (v.token) {
      const derived = await deriveTokenCredentials(v.token, v.kind);
      assert.equal(derived.id, v.id);
      assert.deepEqual(derived.key, creds.key);
      creds = derived;
    }
    const { header, artifacts } = await hawk.sign(creds, v.method, v.resource, v.host, v.port, {
      ts: v.ts, nonce: v.nonce, payload: v.body_utf8 ?? undefined, contentType: v.content_type,
    });
    assert.equal(artifacts.hash, v.expected.hash);
    assert.equal(hawk.normalizedString(artifacts), v.expected.normalized_utf8);
    assert.equal(artifacts.mac, v.expected.mac);
    assert.equal(header, v.expected.firefox_header);
    if (v.body_utf8 !== null) {
      assert.equal(await hawk.payloadHash(v.content_type, v.body_utf8), v.expected.hash);
    }
  });
}

test("payload hash uses the bare MIME type", async () => {
  assert.equal(hawk.bareMime("Application/JSON; charset=utf-8"), "application/json");
  assert.equal(await hawk.payloadHash("application/json; charset=utf-8", "{}"),
    await hawk.payloadHash("application/json", "{}"));
});

test("host and port come from the URL; default ports and IPv6 brackets", () => {
  assert.deepEqual(hawk.hostPort("http://192.168.1.10:8000/x"), { host: "192.168.1.10", port: "8000" });
  assert.deepEqual(hawk.hostPort("http://Foxden.Local/"), { host: "foxden.local", port: "80" });
  assert.deepEqual(hawk.hostPort("https://foxden.example"), { host: "foxden.example", port: "443" });
  assert.deepEqual(hawk.hostPort("http://[::1]:5000"), { host: "::1", port: "5000" });
});

test("a fresh nonce is base64 of 8 random bytes", () => {
  const a = hawk.newNonce();
  assert.match(a, /^[A-Za-z0-9+/]{11}=$/);
  assert.notEqual(a, hawk.newNonce());
});
