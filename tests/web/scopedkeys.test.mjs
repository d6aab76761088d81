// oldsync k / kid from kB and keyRotationTimestamp (and Firefox's generic scoped-key vector).
import { test } from "node:test";
import assert from "node:assert/strict";
import { load, onepw } from "./helpers.mjs";

const { b64urlDecode, bytesToHex, hexToBytes } = await load("bytes.js");
const s = await load("scopedkeys.js");

const oldsync = onepw("oldsync_jwk");

test("there is Mozilla's legacy sync key vector", () => {
  assert.ok(oldsync.some((v) => v.output.kid_utf8 === "1510726317123-IqQv4onc7VcVE1kTQkyyOw"));
});

for (const v of oldsync) {
  test(`oldsync k/kid: ${v.name}`, async () => {
    const jwk = await s.deriveOldsyncKey(hexToBytes(v.input.kB), v.input.keyRotationTimestamp_json);
    assert.deepEqual(jwk, {
      kty: "oct", scope: s.OLDSYNC_SCOPE, k: v.output.k_b64u, kid: v.output.kid_utf8,
    });
    if (v.output.clientState) {
      assert.equal(bytesToHex(b64urlDecode(jwk.kid.split("-").slice(1).join("-"))), v.output.clientState);
    }
    if (v.output.oldsyncKey) {
      assert.equal(bytesToHex(b64urlDecode(jwk.k)), v.output.oldsyncKey);
    }
  });
}

for (const v of onepw("client_state")) {
  test(`client state = hex(SHA-256(kB)[0:16]): ${v.name}`, async () => {
    const jwk = await s.deriveOldsyncKey(hexToBytes(v.input.kB), 1700000000000);
    assert.equal(bytesToHex(b64urlDecode(jwk.kid.slice("1700000000000-".length))), v.output.clientState);
  });
}

test("buildScopedKeys keys the map by scope and passes Firefox's validScopedKeys rules", async () => {
  const kB = hexToBytes(oldsync[0].input.kB);
  const data = {
    [s.OLDSYNC_SCOPE]: { identifier: s.OLDSYNC_SCOPE, keyRotationSecret: "0".repeat(64), keyRotationTimestamp: 1510726317123 },
  };
  const keys = await s.buildScopedKeys(kB, "aeaa1725c7a24ff983c6295725d5fc9b", data);
  assert.deepEqual(Object.keys(keys), [s.OLDSYNC_SCOPE]);
  for (const [scope, key] of Object.entries(keys)) {
    assert.equal(key.scope, scope);
    assert.equal(key.kty, "oct");
    const [ts, ...rest] = key.kid.split("-");
    assert.ok(Number(ts) > 0 && !Number.isNaN(new Date(Number(ts)).getTime()));
    assert.match(ts, /^[0-9]{13}$/);
    assert.match(rest.join("-"), /^[A-Za-z0-9_-]+$/);
    assert.match(key.k, /^[A-Za-z0-9_-]+$/);
    assert.equal(b64urlDecode(key.k).length, 64);
  }
  assert.deepEqual(await s.buildScopedKeys(kB, "aa", {}), {});
});

test("generic scoped key (Firefox test_keys.js / fxa-crypto-relier vector)", async () => {
  const key = await s.deriveScopedKey(
    hexToBytes("8b2e1303e21eee06a945683b8d495b9bf079ca30baa37eb8392d9ffa4767be45"),
    "aeaa1725c7a24ff983c6295725d5fc9b", "app_key",
    { identifier: "app_key:https%3A//example.com", keyRotationTimestamp: 1510726317000,
      keyRotationSecret: "517d478cb4f994aa69930416648a416fdaa1762c5abf401a2acf11a0f185e98d" });
  assert.deepEqual(key, {
    kty: "oct", scope: "app_key", kid: "1510726317-Voc-Eb9IpoTINuo9ll7bjA",
    k: "Kkbk1_Q0oCcTmggeDH6880bQrxin2RLu5D00NcJazdQ",
  });
});

test("a bad keyRotationTimestamp is refused", async () => {
  await assert.rejects(s.deriveOldsyncKey(new Uint8Array(32), "x"), TypeError);
  await assert.rejects(s.deriveOldsyncKey(new Uint8Array(32), 0), TypeError);
});
