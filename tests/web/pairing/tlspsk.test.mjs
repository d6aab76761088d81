// server/web/static/pairing/tlspsk.js against the fxa-pairing-channel trace (both roles)
// and the failure cases the supplicant page relies on. Run: node --test tests/web/pairing/
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import {
  AlertDescription, CipherState, ClientConnection, ConnectionClosedError, KeySchedule,
  LocalProtocolError, MAX_PLAINTEXT, PeerAlert, ServerConnection, State, TLSAlertError,
  TLSPSKError, frameToRecord, recordToFrame,
} from "../../../server/web/static/pairing/tlspsk.js";

const hex = (s) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const toHex = (b) => Buffer.from(b).toString("hex");
const raw = JSON.parse(readFileSync(
  new URL("../../vectors/fxa-pairing-channel-tls-vectors.json", import.meta.url), "utf8"));
const V = Object.fromEntries(Object.entries(raw.hex).map(([k, v]) => [k, hex(v)]));
const utf8 = (s) => new TextEncoder().encode(s);

const queue = (...values) => (n) => {
  const v = values.shift();
  assert.equal(v.length, n);
  return v;
};
const vectorClient = () =>
  ClientConnection.create(V.PSK, V.PSK_ID, { random: queue(V.CLIENT_RANDOM, V.SESSION_ID) });
const vectorServer = () => ServerConnection.create(V.PSK, V.PSK_ID, { random: queue(V.SERVER_RANDOM) });

async function connectedServer() {
  const s = await vectorServer();
  await s.receiveRecord(V.CLIENT_HELLO);
  s.dataToSend();
  assert.deepEqual(await s.receiveRecord(V.CLIENT_FINISHED), [{ type: "handshakeComplete" }]);
  return s;
}
async function connectedClient() {
  const c = await vectorClient();
  c.dataToSend();
  await c.receiveRecord(V.SERVER_HELLO);
  await c.receiveRecord(V.SERVER_CHANGE_CIPHER_SPEC);
  await c.receiveRecord(V.SERVER_ENCRYPTED_EXTENSIONS_AND_FINISHED);
  c.dataToSend();
  return c;
}
async function rejects(promise, description) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof TLSAlertError, String(err));
    assert.equal(err.description, description);
    return true;
  });
}
async function seal(secret, seq, content, type) {
  const cs = await CipherState.create(secret);
  cs.seq = seq;
  const inner = new Uint8Array([...content, type]);
  const header = new Uint8Array([23, 3, 3, 0, inner.length + 16]);
  return new Uint8Array([...header, ...(await cs.encrypt(inner, header))]);
}
async function pump(a, b) {
  const seen = [];
  for (let moved = true; moved;) {
    moved = false;
    for (const [src, dst, name] of [[a, b, "b"], [b, a, "a"]]) {
      for (const rec of src.dataToSend()) {
        moved = true;
        for (const ev of await dst.receiveRecord(rec)) seen.push([name, ev.type]);
      }
    }
  }
  return seen;
}

test("key schedule vectors", async () => {
  const ks = new KeySchedule();
  await ks.addPSK(V.PSK);
  assert.equal(toHex(ks.extBinderKey), toHex(V.KEYS_EXT_BINDER));
  ks.addToTranscript(V.KEYS_PLAINTEXT_TRANSCRIPT);
  await ks.addECDHE();
  assert.equal(toHex(ks.clientHandshakeTrafficSecret), toHex(V.KEYS_CLIENT_HANDSHAKE_TRAFFIC_SECRET));
  assert.equal(toHex(ks.serverHandshakeTrafficSecret), toHex(V.KEYS_SERVER_HANDSHAKE_TRAFFIC_SECRET));
  ks.addToTranscript(V.KEYS_ENCRYPTED_TRANSCRIPT);
  await ks.finalize();
  assert.equal(toHex(ks.clientApplicationTrafficSecret),
    toHex(V.KEYS_CLIENT_APPLICATION_TRAFFIC_SECRET_0));
  assert.equal(toHex(ks.serverApplicationTrafficSecret),
    toHex(V.KEYS_SERVER_APPLICATION_TRAFFIC_SECRET_0));
  await rejects(ks.finalize(), AlertDescription.INTERNAL_ERROR);
});

test("client role reproduces the trace", async () => {
  const c = await vectorClient();
  assert.equal(c.state, State.CLIENT_WAIT_SH);
  assert.deepEqual(c.dataToSend().map(toHex), [toHex(V.CLIENT_HELLO)]);
  assert.deepEqual(await c.receiveRecord(V.SERVER_HELLO), []);
  assert.deepEqual(await c.receiveRecord(V.SERVER_CHANGE_CIPHER_SPEC), []);
  assert.deepEqual(await c.receiveRecord(V.SERVER_ENCRYPTED_EXTENSIONS_AND_FINISHED),
    [{ type: "handshakeComplete" }]);
  assert.deepEqual(c.dataToSend().map(toHex), [toHex(V.CLIENT_FINISHED)]);
  const [ev] = await c.receiveRecord(V.SERVER_APP_DATA);
  assert.equal(toHex(ev.data), toHex(V.SERVER_RAW_APP_DATA));
  assert.deepEqual((await c.sendData(V.CLIENT_RAW_APP_DATA)).map(toHex), [toHex(V.CLIENT_APP_DATA)]);
  assert.deepEqual((await c.sendData(V.CLIENT_RAW_APP_DATA_2)).map(toHex),
    [toHex(V.CLIENT_APP_DATA_2)]);
  const [ev2] = await c.receiveRecord(V.SERVER_APP_DATA_2);
  assert.equal(toHex(ev2.data), toHex(V.SERVER_RAW_APP_DATA_2));
  assert.deepEqual((await c.close()).map(toHex), [toHex(V.CLIENT_CLOSE)]);
  assert.deepEqual(await c.receiveRecord(V.SERVER_CLOSE), [{ type: "closed" }]);
  assert.ok(c.ended);
});

test("server role reproduces the trace", async () => {
  const s = await vectorServer();
  assert.deepEqual(s.dataToSend(), []);
  assert.deepEqual(await s.receiveRecord(V.CLIENT_HELLO), []);
  assert.deepEqual(s.dataToSend().map(toHex), [V.SERVER_HELLO, V.SERVER_CHANGE_CIPHER_SPEC,
    V.SERVER_ENCRYPTED_EXTENSIONS_AND_FINISHED].map(toHex));
  await assert.rejects(s.sendData(utf8("early")), LocalProtocolError);
  assert.deepEqual(await s.receiveRecord(V.CLIENT_CHANGE_CIPHER_SPEC), []);
  assert.deepEqual(await s.receiveRecord(V.CLIENT_FINISHED), [{ type: "handshakeComplete" }]);
  assert.equal(toHex((await s.receiveRecord(V.CLIENT_APP_DATA))[0].data), toHex(V.CLIENT_RAW_APP_DATA));
  assert.deepEqual((await s.sendData(V.SERVER_RAW_APP_DATA)).map(toHex), [toHex(V.SERVER_APP_DATA)]);
  assert.equal(toHex((await s.receiveRecord(V.CLIENT_APP_DATA_2))[0].data),
    toHex(V.CLIENT_RAW_APP_DATA_2));
  assert.deepEqual((await s.sendData(V.SERVER_RAW_APP_DATA_2)).map(toHex),
    [toHex(V.SERVER_APP_DATA_2)]);
  assert.deepEqual(await s.receiveRecord(V.CLIENT_CLOSE), [{ type: "closed" }]);
  assert.deepEqual((await s.close()).map(toHex), [toHex(V.SERVER_CLOSE)]);
});

test("server accepts the extended ClientHello and selects identity 1", async () => {
  const s = await ServerConnection.create(V.PSK, V.PSK_ID);
  await s.receiveRecord(V.EXTENDED_CLIENT_HELLO);
  const out = s.dataToSend();
  assert.equal(out.length, 3);
  assert.equal(toHex(out[0].subarray(-6)), "002900020001");
});

test("round trip with JSON both ways, unserialised calls keep order", async () => {
  const c = await ClientConnection.create(utf8("k".repeat(32)), "AAAAAAAAAAAAAAAAAAAAAA");
  const s = await ServerConnection.create(utf8("k".repeat(32)), "AAAAAAAAAAAAAAAAAAAAAA");
  assert.deepEqual(await pump(c, s), [["a", "handshakeComplete"], ["b", "handshakeComplete"]]);
  const msg = { message: "pair:supp:request", data: { state: "xyz" } };
  const recs = (await Promise.all([1, 2, 3].map((n) => c.sendData(utf8(JSON.stringify({ ...msg, n })))))).flat();
  for (const [i, rec] of recs.entries()) {
    const [ev] = await s.receiveRecord(rec);
    assert.equal(JSON.parse(new TextDecoder().decode(ev.data)).n, i + 1);
  }
  const [back] = await s.sendData(utf8("{}"));
  assert.equal(new TextDecoder().decode((await c.receiveRecord(back))[0].data), "{}");
});

test("max record size; larger is refused locally", async () => {
  const c = await ClientConnection.create(V.PSK, "x"), s = await ServerConnection.create(V.PSK, "x");
  await pump(c, s);
  const big = new Uint8Array(MAX_PLAINTEXT).fill(7);
  const [rec] = await c.sendData(big);
  assert.equal(rec.length, 5 + MAX_PLAINTEXT + 17);
  assert.equal((await s.receiveRecord(rec))[0].data.length, MAX_PLAINTEXT);
  await assert.rejects(c.sendData(new Uint8Array(MAX_PLAINTEXT + 1)), LocalProtocolError);
  assert.equal(c.state, State.CONNECTED);
});

test("wrong PSK fails on both sides and nothing leaks", async () => {
  const c = await ClientConnection.create(utf8("A".repeat(32)), "chan");
  const s = await ServerConnection.create(utf8("B".repeat(32)), "chan");
  await assert.rejects(c.sendData(utf8("secret")), LocalProtocolError);
  await rejects(s.receiveRecord(c.dataToSend()[0]), AlertDescription.DECRYPT_ERROR);
  const [alert] = s.dataToSend();
  assert.equal(toHex(alert), "15030300020233");
  await assert.rejects(c.receiveRecord(alert), (e) => e instanceof PeerAlert && e.description === 51);
  assert.deepEqual(c.dataToSend(), []);
  for (const conn of [c, s]) {
    assert.equal(conn.state, State.ERROR);
    await assert.rejects(conn.sendData(utf8("x")), ConnectionClosedError);
    await assert.rejects(conn.receiveRecord(alert), ConnectionClosedError);
  }
});

test("bad Finished from the server is a decrypt_error", async () => {
  const c = await vectorClient();
  c.dataToSend();
  await c.receiveRecord(V.SERVER_HELLO);
  const content = new Uint8Array([8, 0, 0, 2, 0, 0, 20, 0, 0, 32, ...new Uint8Array(32)]);
  await rejects(c.receiveRecord(await seal(c._ks.serverHandshakeTrafficSecret, 0, content, 22)),
    AlertDescription.DECRYPT_ERROR);
  assert.equal(c.dataToSend().length, 1);
});

test("tampered, truncated, garbage, replayed and reordered records fail", async () => {
  const cases = [
    [(() => { const r = V.CLIENT_APP_DATA.slice(); r[10] ^= 1; return r; })(), AlertDescription.BAD_RECORD_MAC],
    [V.CLIENT_APP_DATA.subarray(0, -1), AlertDescription.DECODE_ERROR],
    [utf8("a badly-formed message"), AlertDescription.DECODE_ERROR],
    [new Uint8Array(0), AlertDescription.DECODE_ERROR],
    [V.CLIENT_APP_DATA_2, AlertDescription.BAD_RECORD_MAC],
    [V.CLIENT_CHANGE_CIPHER_SPEC, AlertDescription.UNEXPECTED_MESSAGE],
  ];
  for (const [record, description] of cases) {
    const s = await connectedServer();
    await rejects(s.receiveRecord(record), description);
    assert.equal(s.state, State.ERROR);
  }
  const s = await connectedServer();
  await s.receiveRecord(V.CLIENT_APP_DATA);
  await rejects(s.receiveRecord(V.CLIENT_APP_DATA), AlertDescription.BAD_RECORD_MAC);
  const fresh = await vectorServer();
  await rejects(fresh.receiveRecord(V.SERVER_HELLO), AlertDescription.UNEXPECTED_MESSAGE);
  const client = await vectorClient();
  await rejects(client.receiveRecord(V.SERVER_CHANGE_CIPHER_SPEC), AlertDescription.UNEXPECTED_MESSAGE);
});

test("close_notify per direction, peer alerts", async () => {
  const c = await connectedClient();
  assert.deepEqual(await c.receiveRecord(V.SERVER_APP_DATA).then((e) => e.length), 1);
  await c.receiveRecord(V.SERVER_APP_DATA_2);
  assert.deepEqual(await c.receiveRecord(V.SERVER_CLOSE), [{ type: "closed" }]);
  await assert.rejects(c.receiveRecord(V.SERVER_CLOSE), ConnectionClosedError);
  assert.equal((await c.sendData(utf8("still"))).length, 1); // half-close: we may still send
  assert.equal((await c.close()).length, 1);
  assert.deepEqual(await c.close(), []);
  await assert.rejects(c.sendData(utf8("x")), ConnectionClosedError);
  const c2 = await connectedClient();
  const secret = c2._ks.serverApplicationTrafficSecret;
  await assert.rejects(c2.receiveRecord(await seal(secret, 0, [2, 80], 21)),
    (e) => e instanceof PeerAlert && e.alertName === "INTERNAL_ERROR");
  const c3 = await connectedClient();
  await rejects(c3.receiveRecord(await seal(secret, 0, [2, 0], 21)), AlertDescription.ILLEGAL_PARAMETER);
});

test("frames are padded base64url; both forms decode", () => {
  const rec = new Uint8Array([0xfb, 0xff, 0x01, 0x02]);
  assert.equal(recordToFrame(rec), "-_8BAg==");
  assert.deepEqual(frameToRecord("-_8BAg=="), rec);
  assert.deepEqual(frameToRecord("-_8BAg"), rec);
  assert.throws(() => frameToRecord("+/8BAg=="), TLSPSKError);
});

test("random garbage only raises the module's errors", async () => {
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const makers = [vectorClient, vectorServer, connectedClient, connectedServer];
  for (let i = 0; i < 120; i++) {
    const conn = await makers[i % makers.length]();
    const base = [V.CLIENT_HELLO, V.SERVER_HELLO, V.CLIENT_APP_DATA, V.EXTENDED_CLIENT_HELLO][i % 4];
    const rec = base.slice(0, Math.floor(rnd() * (base.length + 2)));
    if (rec.length) rec[Math.floor(rnd() * rec.length)] = Math.floor(rnd() * 256);
    try {
      await conn.receiveRecord(rec);
    } catch (err) {
      assert.ok(err instanceof TLSPSKError, String(err));
    }
  }
});
