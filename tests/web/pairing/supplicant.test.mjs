// server/web/static/pairing/supplicant.js: link parsing, WebChannel detail formats, and the
// whole flow against a fake relay whose authority is our own TLS server (tlspsk.js).
// Run: node --test tests/web/pairing/
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import {
  DEFAULT_TIMEOUTS, PairingLinkError, SupplicantFlow, WEBCHANNEL_REDIRECT, checkAuthorization,
  detailIsObject, oauthLoginData, parsePairingMessage, parseSupplicantLink, relayUrlFor,
  sendOAuthLogin, webChannelDetail,
} from "../../../server/web/static/pairing/supplicant.js";
import {
  ServerConnection, frameToRecord, recordToFrame,
} from "../../../server/web/static/pairing/tlspsk.js";
import {
  clientName, describeDevice, describePlace, isMobile,
} from "../../../server/web/static/pairing/describe.js";

const FENIX = "a2270f727f45f648";
const IOS = "1b1a3e44c54fbb58";
const CHANNEL_ID = "AAECAwQFBgcICQoLDA0ODw";
const KEY = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const b64u = (bytes) => Buffer.from(bytes).toString("base64url");
const KEYS_JWK = b64u(Buffer.from(JSON.stringify({ kty: "EC", crv: "P-256", x: "eA", y: "eQ" })));
const CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const STATE = "c3RhdGUtb2YtdGhlLXBob25l";
const CODE = "ab".repeat(32);
const FENIX_UA = "Mozilla/5.0 (Android 14; Mobile; rv:153.0) Gecko/153.0 Firefox/153.0";
const IOS_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 " +
  "(KHTML, like Gecko) FxiOS/153.0 Mobile/15E148 Safari/605.1.15";
const enc = new TextEncoder();
const dec = new TextDecoder();

function link({ query = {}, fragment = {} } = {}) {
  const q = new URLSearchParams({
    entrypoint: "fxa_app_menu", client_id: FENIX,
    scope: "profile https://identity.mozilla.com/apps/oldsync https://identity.mozilla.com/tokens/session",
    state: STATE, code_challenge_method: "S256", code_challenge: CHALLENGE,
    access_type: "offline", keys_jwk: KEYS_JWK, context: "oauth_webchannel_v1", ...query,
  });
  for (const [k, v] of Object.entries(query)) if (v === null) q.delete(k);
  const f = new URLSearchParams({ channel_id: CHANNEL_ID, channel_key: b64u(KEY), ...fragment });
  return `https://foxden.example/pair/supp?${q}#${f}`;
}

// --- link parsing --------------------------------------------------------------------

test("parses a Fenix supplicant URL into exactly the pair:supp:request fields", () => {
  const got = parseSupplicantLink(link());
  assert.equal(got.channelId, CHANNEL_ID);
  assert.deepEqual([...got.channelKey], [...KEY]);
  assert.equal(got.clientName, "Firefox for Android");
  assert.deepEqual(got.params, {
    access_type: "offline", client_id: FENIX, code_challenge: CHALLENGE,
    code_challenge_method: "S256", keys_jwk: KEYS_JWK,
    scope: "profile https://identity.mozilla.com/apps/oldsync https://identity.mozilla.com/tokens/session",
    state: STATE,
  });
  assert.deepEqual(Object.keys(got.params).sort(), ["access_type", "client_id", "code_challenge",
    "code_challenge_method", "keys_jwk", "scope", "state"]);
});

test("accepts redirect_uri=<webchannel URN> instead of context, '+' scope separators", () => {
  const got = parseSupplicantLink(link({ query: {
    context: null, redirect_uri: WEBCHANNEL_REDIRECT, client_id: IOS,
    scope: "profile+https://identity.mozilla.com/apps/oldsync profile" } }));
  assert.equal(got.params.scope, "profile https://identity.mozilla.com/apps/oldsync");
  assert.equal(got.params.client_id, IOS);
  assert.equal(parseSupplicantLink(link({ query: { access_type: null } })).params.access_type,
               "offline");
});

test("rejects bad links, naming the field", () => {
  const padded = b64u(Buffer.from(JSON.stringify({ kty: "EC", crv: "P-256", x: "e", y: "y" })));
  const cases = [
    [{ query: { client_id: "3c49430b43dfba77" } }, "client_id"], // Reference Browser: unknown here
    [{ query: { client_id: "5882386c6d801776" } }, "client_id"], // desktop is no supplicant
    [{ query: { redirect_uri: "https://evil.example/cb", context: null } }, "redirect_uri"],
    [{ query: { context: "fx_desktop_v3" } }, "redirect_uri"],
    [{ query: { code_challenge_method: "plain" } }, "code_challenge_method"],
    [{ query: { code_challenge: "short" } }, "code_challenge"],
    [{ query: { state: null } }, "state"],
    [{ query: { state: "x".repeat(513) } }, "state"],
    [{ query: { scope: " + " } }, "scope"],
    [{ query: { access_type: "forever" } }, "access_type"],
    [{ query: { keys_jwk: null } }, "keys_jwk"],
    [{ query: { keys_jwk: padded + "=" } }, "keys_jwk"],
    [{ query: { keys_jwk: b64u(Buffer.from('{"kty":"RSA"}')) } }, "keys_jwk"],
    [{ query: { keys_jwk: b64u(Buffer.from("not json")) } }, "keys_jwk"],
    [{ fragment: { channel_id: "short" } }, "channel_id"],
    [{ fragment: { channel_key: b64u(KEY.slice(0, 16)) } }, "channel_key"],
    [{ fragment: { channel_key: "!!!" } }, "channel_key"],
  ];
  for (const [spec, field] of cases) {
    assert.throws(() => parseSupplicantLink(link(spec)), (err) => {
      assert.ok(err instanceof PairingLinkError, String(err));
      assert.equal(err.field, field, JSON.stringify(spec));
      assert.equal(err.kind, "link");
      return true;
    });
  }
});

test("the relay URL follows the page: same host, ws for http, wss for https", () => {
  assert.equal(relayUrlFor("https://foxden.example/pair/supp?x#y", CHANNEL_ID),
               `wss://foxden.example/v1/ws/${CHANNEL_ID}`);
  assert.equal(relayUrlFor("http://127.0.0.1:8080/pair/supp", CHANNEL_ID),
               `ws://127.0.0.1:8080/v1/ws/${CHANNEL_ID}`);
});

// --- messages and WebChannel formats ---------------------------------------------------

test("oauth_login: a JSON string for Fenix/desktop, an object for Firefox for iOS", () => {
  const data = oauthLoginData({ code: CODE, state: STATE });
  assert.deepEqual(data, { action: "pairing", code: CODE, state: STATE, redirect: WEBCHANNEL_REDIRECT });
  const fenix = webChannelDetail("fxaccounts:oauth_login", data, FENIX_UA);
  assert.equal(typeof fenix, "string");
  const parsed = JSON.parse(fenix);
  assert.equal(parsed.id, "account_updates");
  assert.equal(parsed.message.command, "fxaccounts:oauth_login");
  assert.deepEqual(parsed.message.data, data);
  assert.match(parsed.message.messageId, /^\d+$/);
  const ios = webChannelDetail("fxaccounts:oauth_login", data, IOS_UA);
  assert.equal(typeof ios, "object");
  assert.match(ios.message.messageId, /^\d+$/); // iOS: Int(messageId)
  assert.deepEqual(ios.message.data, data);
  assert.ok(detailIsObject(IOS_UA) && !detailIsObject(FENIX_UA) && !detailIsObject(""));
  assert.notEqual(JSON.parse(webChannelDetail("c", {}, "")).message.messageId,
                  JSON.parse(webChannelDetail("c", {}, "")).message.messageId);
});

test("sendOAuthLogin dispatches WebChannelMessageToChrome on the target", () => {
  const target = new EventTarget();
  const seen = [];
  target.addEventListener("WebChannelMessageToChrome", (e) => seen.push(e.detail));
  const data = oauthLoginData({ code: CODE, state: STATE });
  sendOAuthLogin(target, data, { userAgent: FENIX_UA });
  sendOAuthLogin(target, data, { userAgent: IOS_UA });
  assert.equal(typeof seen[0], "string");
  assert.equal(JSON.parse(seen[0]).message.command, "fxaccounts:oauth_login");
  assert.equal(seen[1].message.command, "fxaccounts:oauth_login");
});

test("message parsing and authorization checks", () => {
  assert.equal(parsePairingMessage(enc.encode("not json")), null);
  assert.equal(parsePairingMessage(enc.encode('{"data":{}}')), null);
  assert.equal(parsePairingMessage(new Uint8Array([0xff, 0xfe])), null);
  assert.deepEqual(parsePairingMessage(enc.encode('{"message":"x","data":[1]}')), { message: "x", data: {} });
  assert.deepEqual(checkAuthorization({ code: CODE, state: STATE, redirect: "r" }, STATE),
                   { code: CODE, state: STATE });
  for (const bad of [{ code: "nothex", state: STATE }, { code: CODE, state: "other" },
                     { state: STATE }, { code: CODE }]) {
    assert.throws(() => checkAuthorization(bad, STATE), (e) => e.kind === "bad-authorization");
  }
});

test("describe.js: devices, places, app names", () => {
  assert.equal(describeDevice(FENIX_UA), "Firefox on Android");
  assert.equal(describeDevice(IOS_UA), "Firefox on iPhone");
  assert.equal(describeDevice("Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0"),
               "Firefox on Linux");
  assert.equal(describeDevice(""), "an unknown device");
  assert.ok(isMobile(FENIX_UA) && isMobile(IOS_UA) && !isMobile("Mozilla/5.0 (X11; Linux x86_64)"));
  assert.equal(describePlace({ ipAddress: "192.168.1.20" }), "on your network (192.168.1.20)");
  assert.equal(describePlace({ city: "Lyon", country: "France", ipAddress: "1.2.3.4" }),
               "Lyon, France (1.2.3.4)");
  assert.equal(describePlace({}), "on your network");
  assert.equal(clientName(FENIX), "Firefox for Android");
  assert.equal(clientName("constructor"), "an app");
});

// --- the flow against a fake relay -------------------------------------------------------

const DESKTOP_SENDER = { ua: "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0",
                         remote: "127.0.0.1", extra: 5 };

/** A relay with one channel whose creator is a TLS server (our tlspsk.js). */
class FakeRelay {
  constructor({ psk = KEY, pskId = CHANNEL_ID, greet = true, greetId = CHANNEL_ID } = {}) {
    this.psk = psk;
    this.pskId = pskId;
    this.greet = greet;
    this.greetId = greetId;
    this.received = []; // pairing messages the authority got
    this.closes = 0; // close_notify records from the supplicant
    this.socket = null;
    this.urls = [];
    this.onMessage = () => {};
    this._queue = Promise.resolve();
    const relay = this;
    this.WebSocket = class extends EventTarget {
      constructor(url) {
        super();
        relay.urls.push(url);
        relay.socket = this;
        this.readyState = 0;
        this.closeCode = null;
        setImmediate(async () => {
          relay.server = await ServerConnection.create(relay.psk, relay.pskId);
          this.readyState = 1;
          this.dispatchEvent(new Event("open"));
          if (relay.greet) this._deliver(JSON.stringify({ link: `/v1/ws/${relay.greetId}`, channelid: relay.greetId }));
          else relay.drop(1008);
        });
      }
      send(text) {
        assert.equal(this.readyState, 1, "send on a closed socket");
        relay._queue = relay._queue.then(() => relay._fromSupplicant(text));
      }
      close(code = 1000) {
        if (this.readyState >= 2) return;
        this.readyState = 3;
        this.closeCode = code;
        setImmediate(() => this.dispatchEvent(Object.assign(new Event("close"), { code })));
      }
      _deliver(text) {
        if (this.readyState !== 1) return;
        this.dispatchEvent(new MessageEvent("message", { data: text }));
      }
    };
  }

  async _fromSupplicant(text) {
    let events = [];
    try {
      events = await this.server.receiveRecord(frameToRecord(text));
    } catch (err) {
      this.error = err;
    }
    this._flush();
    for (const ev of events) {
      if (ev.type === "data") {
        const msg = JSON.parse(dec.decode(ev.data));
        this.received.push(msg);
        await this.onMessage(msg, this);
      } else if (ev.type === "closed") {
        this.closes += 1;
      }
    }
  }

  _flush() {
    for (const rec of this.server.dataToSend()) this.frame(recordToFrame(rec));
  }

  frame(message, sender = DESKTOP_SENDER) {
    this.socket._deliver(JSON.stringify({ message, sender }));
  }

  async send(obj) {
    for (const rec of await this.server.sendData(enc.encode(JSON.stringify(obj)))) {
      this.frame(recordToFrame(rec));
    }
  }

  async sendRaw(text) {
    for (const rec of await this.server.sendData(enc.encode(text))) this.frame(recordToFrame(rec));
  }

  async closeNotify() {
    for (const rec of await this.server.close()) this.frame(recordToFrame(rec));
  }

  drop(code = 1006) {
    const s = this.socket;
    if (s.readyState >= 2) return;
    s.readyState = 3;
    s.dispatchEvent(Object.assign(new Event("close"), { code }));
  }
}

const METADATA = { email: "ann@example.test", avatar: "http://127.0.0.1/v1/avatar/x.svg",
                   displayName: "Ann", deviceName: "devA’s Firefox on box" };

const flows = [];
afterEach(() => {
  for (const f of flows.splice(0)) f.dispose();
});

function makeFlow(relay, over = {}) {
  const delivered = [];
  const states = [];
  const flow = new SupplicantFlow({
    ...parseSupplicantLink(link()),
    relayUrl: `ws://127.0.0.1:1/v1/ws/${CHANNEL_ID}`,
    WebSocket: relay.WebSocket,
    deliver: async (data) => { delivered.push(data); },
    onChange: (s) => states.push(s),
    ...over,
  });
  flows.push(flow);
  return { flow, delivered, states };
}

function until(pred, what, ms = 3000) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      if (pred()) resolve();
      else if (Date.now() - t0 > ms) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 2);
    };
    tick();
  });
}

// An authority that answers like desktop Firefox: metadata at once, then authorize.
function desktopLike({ authorizeState = STATE, authorizeFirst = false } = {}) {
  return async (msg, relay) => {
    if (msg.message === "pair:supp:request") {
      await relay.send({ message: "pair:auth:metadata", data: METADATA });
      if (authorizeFirst) {
        await relay.send({ message: "pair:auth:authorize",
                           data: { code: CODE, state: authorizeState, redirect: "x", scope: "profile" } });
      }
    }
  };
}

test("happy path: request, metadata, both confirmations, oauth_login, authority closes", async () => {
  const relay = new FakeRelay();
  relay.onMessage = desktopLike();
  const { flow, delivered, states } = makeFlow(relay);
  flow.start();
  assert.deepEqual(relay.urls, [`ws://127.0.0.1:1/v1/ws/${CHANNEL_ID}`]);
  await until(() => flow.state === "confirm", "confirm");
  // Exactly the phone's own OAuth parameters went to the authority (§4.2).
  assert.equal(relay.received[0].message, "pair:supp:request");
  assert.deepEqual(relay.received[0].data, parseSupplicantLink(link()).params);
  assert.deepEqual(flow.metadata, { email: METADATA.email, displayName: "Ann",
                                    deviceName: METADATA.deviceName, avatar: METADATA.avatar });
  assert.deepEqual(flow.sender, { ua: DESKTOP_SENDER.ua, remote: "127.0.0.1" }); // "extra" dropped
  await flow.confirm();
  assert.equal(flow.state, "waiting-authority");
  await until(() => relay.received.length === 2, "supp:authorize at the authority");
  assert.deepEqual(relay.received[1], { message: "pair:supp:authorize", data: {} });
  assert.deepEqual(delivered, []);
  await relay.send({ message: "pair:auth:authorize",
                     data: { code: CODE, state: STATE, redirect: "urn:x?code=1", scope: "profile" } });
  await until(() => flow.state === "done", "done");
  assert.deepEqual(delivered, [{ action: "pairing", code: CODE, state: STATE, redirect: WEBCHANNEL_REDIRECT }]);
  assert.equal(await flow.finished, "done");
  assert.deepEqual(states, ["connecting", "handshake", "waiting-metadata", "confirm",
                            "waiting-authority", "done"]);
  await relay.closeNotify(); // desktop after pair_complete
  await until(() => relay.socket.readyState === 3, "socket closed");
  assert.equal(flow.state, "done");
  // Our close_notify answers it: FPC only shuts its socket once the peer's arrives.
  await until(() => relay.closes === 1, "our close_notify at the authority");
  assert.deepEqual(flow.log, [["out", "pair:supp:request"], ["in", "pair:auth:metadata"],
                              ["out", "pair:supp:authorize"], ["in", "pair:auth:authorize"]]);
});

test("authorize before the phone's confirmation waits for it", async () => {
  const relay = new FakeRelay();
  relay.onMessage = desktopLike({ authorizeFirst: true });
  const { flow, delivered } = makeFlow(relay);
  flow.start();
  await until(() => flow.authorization !== null, "authorization");
  assert.equal(flow.state, "confirm");
  assert.deepEqual(delivered, []);
  await flow.confirm();
  await until(() => flow.state === "done", "done");
  assert.equal(delivered.length, 1);
  await until(() => relay.received.length === 2, "supp:authorize at the authority");
  assert.equal(relay.received.at(-1).message, "pair:supp:authorize");
});

test("unknown messages are ignored; a second metadata does not reset the screen", async () => {
  const relay = new FakeRelay();
  relay.onMessage = async (msg, r) => {
    if (msg.message !== "pair:supp:request") return;
    await r.send({ message: "pair:auth:something-new", data: {} });
    await r.send({ message: "pair:auth:metadata", data: METADATA });
    await r.send({ message: "pair:auth:metadata", data: { email: "mallory@example.test" } });
  };
  const { flow } = makeFlow(relay);
  flow.start();
  await until(() => flow.state === "confirm", "confirm");
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(flow.metadata.email, METADATA.email);
  assert.equal(flow.state, "confirm");
});

async function failsWith(relay, kind, over = {}, poke = async () => {}) {
  const { flow, delivered } = makeFlow(relay, over);
  flow.start();
  await poke(flow);
  assert.equal(await flow.finished, "failed");
  assert.equal(flow.state, "failed");
  assert.equal(flow.error.kind, kind, String(flow.error && flow.error.cause));
  assert.deepEqual(delivered, []);
  await until(() => relay.socket.readyState === 3, "socket closed");
  return flow;
}

test("declined on the computer: close_notify before authorize", async () => {
  const relay = new FakeRelay();
  relay.onMessage = async (msg, r) => {
    if (msg.message === "pair:supp:request") {
      await r.send({ message: "pair:auth:metadata", data: METADATA });
      await r.closeNotify();
    }
  };
  await failsWith(relay, "declined");
  await until(() => relay.closes === 1, "our close_notify at the authority");
});

test("timers are called as plain functions (browsers reject a foreign `this`)", async () => {
  const strict = function (fn, ms) {
    assert.equal(this, undefined, "setTimeout called as a method");
    return setTimeout(fn, ms);
  };
  const strictClear = function (id) {
    assert.equal(this, undefined, "clearTimeout called as a method");
    clearTimeout(id);
  };
  const relay = new FakeRelay();
  relay.onMessage = desktopLike({ authorizeFirst: true });
  const { flow } = makeFlow(relay, { setTimer: strict, clearTimer: strictClear });
  flow.start();
  await until(() => flow.authorization !== null, "authorization");
  await flow.confirm();
  await until(() => flow.state === "done", "done");
});

test("declined after the phone confirmed", async () => {
  const relay = new FakeRelay();
  relay.onMessage = async (msg, r) => {
    if (msg.message === "pair:supp:request") await r.send({ message: "pair:auth:metadata", data: METADATA });
    if (msg.message === "pair:supp:authorize") await r.closeNotify();
  };
  await failsWith(relay, "declined", {}, async (flow) => {
    await until(() => flow.state === "confirm", "confirm");
    await flow.confirm();
  });
});

test("wrong channel key: the authority's decrypt_error alert", async () => {
  const relay = new FakeRelay({ psk: new Uint8Array(32).fill(9) });
  await failsWith(relay, "wrong-key");
  assert.ok(relay.error, "the authority rejected the binder");
});

test("greeting for another channel is refused", async () => {
  await failsWith(new FakeRelay({ greetId: "BBECAwQFBgcICQoLDA0ODw" }), "protocol");
});

test("relay closes before the greeting: the code is no longer valid", async () => {
  await failsWith(new FakeRelay({ greet: false }), "connect");
});

test("relay drops the socket mid-flow", async () => {
  const relay = new FakeRelay();
  relay.onMessage = async (msg, r) => { if (msg.message === "pair:supp:request") r.drop(1006); };
  await failsWith(relay, "relay-closed");
});

test("timeouts: no greeting, no handshake answer, no metadata, no authorization", async () => {
  const quick = { connectMs: 30, handshakeMs: 30, metadataMs: 30, flowMs: 200 };
  const silent = new FakeRelay();
  silent.WebSocket = class extends EventTarget {
    constructor() { super(); silent.socket = this; this.readyState = 1; }
    send() {}
    close() { this.readyState = 3; }
  };
  let flow = await failsWith(silent, "timeout", { timeouts: quick });
  assert.match(flow.error.message, /server did not answer/);

  const noHandshake = new FakeRelay();
  noHandshake._fromSupplicant = async () => {}; // the authority never answers the ClientHello
  flow = await failsWith(noHandshake, "timeout", { timeouts: quick });
  assert.match(flow.error.message, /other device did not answer/);

  const noMetadata = new FakeRelay();
  noMetadata.onMessage = async () => {};
  await failsWith(noMetadata, "timeout", { timeouts: quick });

  const noAuthorize = new FakeRelay();
  noAuthorize.onMessage = desktopLike();
  flow = await failsWith(noAuthorize, "timeout", { timeouts: quick }, async (f) => {
    await until(() => f.state === "confirm", "confirm");
    await f.confirm();
  });
  assert.match(flow.error.message, /took too long/);
  assert.equal(noAuthorize.closes, 1, "the authority got a close_notify");
});

test("an authorization with the wrong state or a malformed code is refused", async () => {
  for (const data of [{ code: CODE, state: "not-ours" }, { code: "zz", state: STATE }]) {
    const relay = new FakeRelay();
    relay.onMessage = async (msg, r) => {
      if (msg.message === "pair:supp:request") {
        await r.send({ message: "pair:auth:metadata", data: METADATA });
        await r.send({ message: "pair:auth:authorize", data });
      }
    };
    await failsWith(relay, "bad-authorization");
  }
});

test("authorize before metadata, garbage payloads and garbage frames are protocol errors", async () => {
  const early = new FakeRelay();
  early.onMessage = async (msg, r) => {
    if (msg.message === "pair:supp:request") {
      await r.send({ message: "pair:auth:authorize", data: { code: CODE, state: STATE } });
    }
  };
  await failsWith(early, "protocol");

  const garbage = new FakeRelay();
  garbage.onMessage = async (msg, r) => { if (msg.message === "pair:supp:request") await r.sendRaw("{nope"); };
  await failsWith(garbage, "protocol");

  const notJson = new FakeRelay();
  notJson.onMessage = async (msg, r) => { if (msg.message === "pair:supp:request") r.socket._deliver("hello"); };
  await failsWith(notJson, "protocol");

  const tampered = new FakeRelay();
  tampered.onMessage = async (msg, r) => {
    if (msg.message !== "pair:supp:request") return;
    const [rec] = await r.server.sendData(enc.encode(JSON.stringify({ message: "pair:auth:metadata", data: METADATA })));
    rec[rec.length - 1] ^= 1;
    r.frame(recordToFrame(rec));
  };
  await failsWith(tampered, "protocol");
});

test("the user cancels: close_notify to the authority, socket closed", async () => {
  const relay = new FakeRelay();
  relay.onMessage = desktopLike();
  const flow = await failsWith(relay, "cancelled", {}, async (f) => {
    await until(() => f.state === "confirm", "confirm");
    f.cancel();
  });
  await until(() => relay.closes === 1, "close_notify at the authority");
  assert.equal(flow.confirmed, false);
});

test("a deliver() that throws ends in 'deliver'", async () => {
  const relay = new FakeRelay();
  relay.onMessage = desktopLike({ authorizeFirst: true });
  await failsWith(relay, "deliver", { deliver: async () => { throw new Error("no channel"); } },
                  async (f) => {
                    await until(() => f.authorization !== null, "authorization");
                    await f.confirm();
                  });
});

test("done: without the authority's close_notify the socket still closes after the grace time", async () => {
  const relay = new FakeRelay();
  relay.onMessage = desktopLike({ authorizeFirst: true });
  const { flow } = makeFlow(relay, { timeouts: { doneGraceMs: 20 } });
  flow.start();
  await until(() => flow.state === "confirm" && flow.authorization, "authorization");
  await flow.confirm();
  await until(() => relay.socket.readyState === 3, "socket closed");
  assert.equal(flow.state, "done");
  assert.ok(DEFAULT_TIMEOUTS.flowMs <= 15 * 60_000, "below desktop's flow timeout");
});
