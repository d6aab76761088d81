// api.js: HAWK headers on the wire, payload hashes, clock offset from Date, errno 111 retry,
// error envelopes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { load } from "./helpers.mjs";

const { Api, FxaError } = await load("api.js");
const hawk = await load("hawk.js");
const { deriveTokenCredentials } = await load("onepw.js");

const TOKEN = "0000000000000000000000000000000000000000000000000000000000000001";

function parseHawk(header) {
  const attrs = {};
  for (const m of header.slice(5).matchAll(/([a-z]+)="([^"]*)"/g)) attrs[m[1]] = m[2];
  return attrs;
}

function stub(responses) {
  const seen = [];
  const fetchImpl = async (url, init) => {
    seen.push({ url, init });
    const r = responses.shift() || { status: 200, body: {} };
    return new Response(r.body === undefined ? "" : JSON.stringify(r.body), {
      status: r.status || 200,
      headers: { "Content-Type": "application/json", ...(r.headers || {}) },
    });
  };
  return { seen, fetchImpl };
}

async function verify(req, { method, resource, host, port }) {
  const attrs = parseHawk(req.init.headers.Authorization);
  const creds = await deriveTokenCredentials(TOKEN, "sessionToken");
  assert.equal(attrs.id, creds.id);
  const hash = attrs.hash || "";
  const mac = await hawk.computeMac(creds.key, hawk.normalizedString({ ts: attrs.ts, nonce: attrs.nonce, method, resource, host, port, hash }));
  assert.equal(attrs.mac, mac);
  return attrs;
}

test("POST with a token: JSON body, payload hash over application/json, MAC over page host/port", async () => {
  const { seen, fetchImpl } = stub([{ body: { ok: 1 } }]);
  const api = new Api({ origin: "http://192.168.1.10:8000", fetchImpl });
  const out = await api.scopedKeyData(TOKEN, "5882386c6d801776", "profile");
  assert.deepEqual(out, { ok: 1 });
  const [req] = seen;
  assert.equal(req.url, "http://192.168.1.10:8000/v1/account/scoped-key-data");
  assert.equal(req.init.method, "POST");
  assert.equal(req.init.headers["Content-Type"], "application/json; charset=utf-8");
  assert.equal(req.init.body, '{"client_id":"5882386c6d801776","scope":"profile"}');
  assert.equal(req.init.credentials, "omit");
  const attrs = await verify(req, { method: "POST", resource: "/v1/account/scoped-key-data", host: "192.168.1.10", port: "8000" });
  assert.equal(attrs.hash, await hawk.payloadHash("application/json", req.init.body));
  assert.equal(attrs.ext, undefined);
});

test("GET with a token: no hash, no body; the keyFetchToken kind is used for /account/keys", async () => {
  const { seen, fetchImpl } = stub([{ body: [] }, { body: { bundle: "00" } }]);
  const api = new Api({ origin: "http://foxden.local", fetchImpl });
  await api.devices(TOKEN);
  const attrs = await verify(seen[0], { method: "GET", resource: "/v1/account/devices", host: "foxden.local", port: "80" });
  assert.equal(attrs.hash, undefined);
  assert.equal(seen[0].init.body, undefined);
  await api.accountKeys(TOKEN);
  const kf = await deriveTokenCredentials(TOKEN, "keyFetchToken");
  assert.equal(parseHawk(seen[1].init.headers.Authorization).id, kf.id);
});

test("session/destroy posts {} with a hash; login is unauthenticated with ?keys=true", async () => {
  const { seen, fetchImpl } = stub([{ body: {} }, { body: { uid: "u" } }]);
  const api = new Api({ origin: "http://127.0.0.1:5000", fetchImpl });
  await api.sessionDestroy(TOKEN);
  assert.equal(seen[0].init.body, "{}");
  assert.ok(parseHawk(seen[0].init.headers.Authorization).hash);
  await api.login("a@b.example", "ff".repeat(32));
  assert.equal(seen[1].url, "http://127.0.0.1:5000/v1/account/login?keys=true");
  assert.equal(seen[1].init.headers.Authorization, undefined);
  assert.deepEqual(JSON.parse(seen[1].init.body), { email: "a@b.example", authPW: "ff".repeat(32), service: "sync", reason: "signin" });
});

test("the clock offset comes from the Date header and moves ts", async () => {
  const serverTime = Date.now() + 3600 * 1000;
  const { seen, fetchImpl } = stub([
    { body: {}, headers: { Date: new Date(serverTime).toUTCString() } },
    { body: {} },
  ]);
  const api = new Api({ origin: "http://h:1", fetchImpl });
  await api.login("a@b.example", "00".repeat(32));
  await api.devices(TOKEN);
  const ts = Number(parseHawk(seen[1].init.headers.Authorization).ts);
  assert.ok(Math.abs(ts - serverTime / 1000) < 5, `ts ${ts} follows the server clock`);
});

test("401 errno 111 is retried once with the server's time", async () => {
  const serverTime = Math.floor(Date.now() / 1000) - 7200;
  const { seen, fetchImpl } = stub([
    { status: 401, body: { code: 401, errno: 111, error: "Unauthorized", message: "Invalid timestamp", serverTime } },
    { body: { state: "verified" } },
  ]);
  const api = new Api({ origin: "http://h:1", fetchImpl });
  assert.deepEqual(await api.sessionStatus(TOKEN), { state: "verified" });
  assert.equal(seen.length, 2);
  const ts = Number(parseHawk(seen[1].init.headers.Authorization).ts);
  assert.ok(Math.abs(ts - serverTime) < 5);
});

test("error envelopes become FxaError with errno, retryAfter and email", async () => {
  const { fetchImpl } = stub([
    { status: 400, body: { code: 400, errno: 120, error: "Bad Request", message: "Incorrect email case", email: "A@b.example" } },
    { status: 429, body: { code: 429, errno: 114, error: "Too Many Requests", message: "Client has sent too many requests", retryAfter: 42 } },
    { status: 503, headers: { "Retry-After": "7" }, body: { code: 503, errno: 201, message: "busy" } },
    { status: 500 },
  ]);
  const api = new Api({ origin: "http://h:1", fetchImpl });
  await assert.rejects(api.login("a@b.example", "00"), (e) => e instanceof FxaError && e.errno === 120 && e.email === "A@b.example");
  await assert.rejects(api.login("a@b.example", "00"), (e) => e.errno === 114 && e.retryAfter === 42 && e.status === 429);
  await assert.rejects(api.login("a@b.example", "00"), (e) => e.errno === 201 && e.retryAfter === 7);
  await assert.rejects(api.login("a@b.example", "00"), (e) => e.errno === 999 && e.status === 500);
});

test("a network failure is errno 998 with a message that says what to do", async () => {
  const api = new Api({ origin: "http://h:1", fetchImpl: async () => { throw new TypeError("NetworkError"); } });
  await assert.rejects(api.login("a@b.example", "00"), (e) => e.errno === 998 && /Cannot reach/.test(e.message));
});
