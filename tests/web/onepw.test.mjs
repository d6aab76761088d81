// onepw (key-stretch v1): quickStretch, authPW, unwrapBKey; token credentials.
// Vectors: tests/vectors/onepw.json (shared with the Python side).
import { test } from "node:test";
import assert from "node:assert/strict";
import { load, onepw } from "./helpers.mjs";

const { bytesToHex, hexToBytes } = await load("bytes.js");
const o = await load("onepw.js");

const v1 = onepw("client_credentials_v1");

test("there are v1 vectors, including Mozilla's andré@example.org / pässwörd", () => {
  assert.ok(v1.length >= 1);
  assert.ok(v1.some((v) => v.input.email_utf8 === "andré@example.org" && v.input.password_utf8 === "pässwörd"));
});

for (const v of v1) {
  test(`quickStretch/authPW/unwrapBKey: ${v.name}`, async () => {
    if (v.input.email) {
      assert.equal(bytesToHex(new TextEncoder().encode(v.input.email_utf8)), v.input.email);
    }
    const qs = await o.quickStretch(v.input.email_utf8, v.input.password_utf8);
    assert.equal(bytesToHex(qs), v.output.quickStretchedPW);
    assert.equal(bytesToHex(await o.deriveAuthPW(qs)), v.output.authPW);
    assert.equal(bytesToHex(await o.deriveUnwrapBKey(qs)), v.output.unwrapBKey);
    const creds = await o.deriveCredentials(v.input.email_utf8, v.input.password_utf8);
    assert.equal(creds.authPW, v.output.authPW);
    assert.equal(bytesToHex(creds.unwrapBKey), v.output.unwrapBKey);
  });
}

test("the email is part of the salt: case matters (errno 120 retry needs the canonical one)", async () => {
  const a = await o.deriveCredentials("Andre@example.org", "pässwörd");
  const b = await o.deriveCredentials("andre@example.org", "pässwörd");
  assert.notEqual(a.authPW, b.authPW);
});

for (const v of onepw("token_and_bundle")) {
  test(`token credentials: ${v.name}`, async () => {
    const token = v.input.keyFetchToken || v.input.sessionToken;
    const creds = await o.deriveTokenCredentials(token, v.input.kind_utf8);
    assert.equal(creds.id, v.output.tokenId);
    assert.equal(bytesToHex(creds.key), v.output.hawkKey);
    if (v.output.keyRequestKey) {
      assert.equal(bytesToHex(creds.extra), v.output.keyRequestKey);
    }
    assert.equal(creds.key.length, 32);
    assert.deepEqual(hexToBytes(creds.id).length, 32);
  });
}
