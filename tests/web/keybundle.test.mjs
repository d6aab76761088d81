// /v1/account/keys bundle: unbundle -> kA, wrapKB; kB = wrapKB XOR unwrapBKey; re-wrap.
import { test } from "node:test";
import assert from "node:assert/strict";
import { load, onepw } from "./helpers.mjs";

const { bytesToHex, hexToBytes } = await load("bytes.js");
const kb = await load("keybundle.js");
const o = await load("onepw.js");

for (const v of onepw("unbundle_keys")) {
  test(`unbundle: ${v.name}`, async () => {
    const { kA, wrapKB } = await kb.unbundleKeys(hexToBytes(v.input.keyRequestKey), v.input.bundle);
    assert.equal(bytesToHex(kA), v.output.kA);
    assert.equal(bytesToHex(wrapKB), v.output.wrapKb);
  });
}

for (const v of onepw("token_and_bundle").filter((x) => x.output.bundle)) {
  test(`bundle from the keyFetchToken: ${v.name}`, async () => {
    const creds = await o.deriveTokenCredentials(v.input.keyFetchToken, "keyFetchToken");
    const built = await kb.bundle(creds.extra, hexToBytes(v.input.kA), hexToBytes(v.input.wrapKb));
    assert.equal(bytesToHex(built), v.output.bundle);
    const { kA, wrapKB } = await kb.unbundleKeys(creds.extra, v.output.bundle);
    assert.equal(bytesToHex(kA), v.input.kA);
    assert.equal(bytesToHex(wrapKB), v.input.wrapKb);
  });

  test(`a tampered bundle is refused: ${v.name}`, async () => {
    const creds = await o.deriveTokenCredentials(v.input.keyFetchToken, "keyFetchToken");
    const bad = v.output.bundle.slice(0, 10) + (v.output.bundle[10] === "0" ? "1" : "0") + v.output.bundle.slice(11);
    await assert.rejects(kb.unbundleKeys(creds.extra, bad), kb.BundleError);
    await assert.rejects(kb.unbundleKeys(creds.extra, v.output.bundle.slice(2)), kb.BundleError);
    await assert.rejects(kb.unbundleKeys(creds.extra, "zz"), kb.BundleError);
  });
}

for (const v of onepw("unwrap_kb")) {
  test(`kB = wrapKB XOR unwrapBKey: ${v.name}`, () => {
    const kB = kb.computeKB(hexToBytes(v.output.wrapKb), hexToBytes(v.input.unwrapBKey));
    assert.equal(bytesToHex(kB), v.output.kB);
  });
}

test("a password change re-wraps kB for the new unwrapBKey and keeps kB", async () => {
  const [v] = onepw("unwrap_kb");
  const kB = hexToBytes(v.output.kB);
  const fresh = await o.deriveCredentials("andré@example.org", "a new password");
  const wrap = kb.rewrapKB(kB, fresh.unwrapBKey);
  assert.equal(bytesToHex(kb.computeKB(wrap, fresh.unwrapBKey)), v.output.kB);
});
