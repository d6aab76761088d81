// server/web/static/pairing/authority.js (the page desktop Firefox shows in its pairing
// dialog) against a fake of Firefox's own FxAccountsPairingFlow.onWebChannelMessage, as
// shipped in Firefox ESR 153 (modules/FxAccountsPairing.sys.mjs): same states, same
// replies, no reply at all for a forgotten flow. Run: node --test tests/web/pairing/
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  AuthorityFlow, COMMANDS, PAIR_AUTH_REDIRECT, parseAuthorityUrl,
} from "../../../server/web/static/pairing/authority.js";
import { NoChannelError } from "../../../server/web/static/js/webchannel.js";

const CHANNEL_ID = "AAECAwQFBgcICQoLDA0ODw";
const FAST = { heartbeatMs: 5, replyMs: 50, authorizeMs: 200, missedHeartbeats: 3 };
const SENDER = { ua: "Mozilla/5.0 (Android 14; Mobile; rv:153.0) Gecko/153.0 Firefox/153.0",
                 remote: "192.168.1.20" };

/** Firefox's flow for one channel, reduced to what the page can observe. */
class FakeFirefox {
  constructor({ authorizeFails = false, authorizeDelayMs = 0 } = {}) {
    this.state = "PendingConfirmations";
    this.error = null;
    this.exists = true;
    this.closed = false;
    this.authorizeFails = authorizeFails;
    this.authorizeDelayMs = authorizeDelayMs;
    this.commands = [];
    this.authorizeSent = 0; // pair:auth:authorize messages to the phone
  }

  suppAuthorize() {
    // onPairingChannelMessage("pair:supp:authorize")
    if (this.state === "PendingConfirmations") this.state = "PendingLocalConfirmation";
    else if (this.state === "PendingRemoteConfirmation") this.state = "Completed";
    else this._errored(new Error("Wrong state for pair:supp:authorize"));
  }

  _errored(e) { this.state = "Errored"; this.error = e; this.closed = true; }

  async handle(command, data) {
    this.commands.push([command, { ...data }]);
    const known = Object.values(COMMANDS);
    if (!known.includes(command)) throw new Error(`unknown command ${command}`); // finalizeAll
    assert.deepEqual(Object.keys(data), ["channel_id"]);
    if (data.channel_id !== CHANNEL_ID || !this.exists) return undefined; // no reply at all
    const pending = ["PendingConfirmations", "PendingLocalConfirmation"];
    try {
      switch (command) {
        case COMMANDS.metadata:
          if (!pending.includes(this.state)) throw new Error("Wrong state");
          return { ua: SENDER.ua, city: undefined, region: undefined, country: undefined,
                   ipAddress: SENDER.remote };
        case COMMANDS.authorize:
          if (!pending.includes(this.state)) throw new Error("Wrong state");
          await new Promise((r) => setTimeout(r, this.authorizeDelayMs));
          if (this.authorizeFails) throw new Error("Unauthorized for route");
          this.authorizeSent += 1;
          this.state = this.state === "PendingConfirmations" ? "PendingRemoteConfirmation" : "Completed";
          break;
        case COMMANDS.decline:
          this.state = "Aborted";
          this.exists = false;
          this.closed = true;
          break;
        case COMMANDS.heartbeat:
          if (this.state === "Errored" || this.closed) {
            return { err: this.error.message }; // TypeError when closed but not errored
          }
          return { suppAuthorized: !["PendingConfirmations", "PendingRemoteConfirmation"].includes(this.state) };
        case COMMANDS.complete:
          this.exists = false;
          this.closed = true;
          break;
      }
    } catch (e) {
      this._errored(e);
    }
    return {};
  }

  /** A webchannel.js-like object: request() rejects after timeoutMs without a reply. */
  channel() {
    return {
      request: (command, data, { timeoutMs }) => new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${command}: no reply`)), timeoutMs);
        this.handle(command, data).then((reply) => {
          if (reply !== undefined) { clearTimeout(timer); resolve(reply); }
        }, (err) => { clearTimeout(timer); reject(err); });
      }),
    };
  }
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

function start(ff, over = {}) {
  const states = [];
  const flow = new AuthorityFlow({ channel: ff.channel(), channelId: CHANNEL_ID, timings: FAST,
                                   onChange: (s) => states.push(s), ...over });
  flow.start();
  return { flow, states };
}

function onlyPairingCommands(ff) {
  for (const [command] of ff.commands) assert.ok(Object.values(COMMANDS).includes(command), command);
}

test("parses the URL Firefox opens (FF test_pairing.js) and nothing else", () => {
  const href = "https://foxden.example/oauth?client_id=a2270f727f45f648&scope=profile+https%3A%2F%2Fidentity.mozilla.com%2Fapps%2Foldsync" +
    `&email=ann%40example.test&uid=abc&channel_id=${CHANNEL_ID}&redirect_uri=${encodeURIComponent(PAIR_AUTH_REDIRECT)}`;
  assert.deepEqual(parseAuthorityUrl(href), {
    channelId: CHANNEL_ID, clientId: "a2270f727f45f648",
    scope: "profile https://identity.mozilla.com/apps/oldsync", email: "ann@example.test", uid: "abc" });
  assert.equal(parseAuthorityUrl(href.replace("pair-auth-webchannel", "oauth-redirect-webchannel")), null);
  assert.equal(parseAuthorityUrl(href.replace(CHANNEL_ID, "short")), null);
  assert.equal(parseAuthorityUrl("https://foxden.example/oauth?client_id=x"), null);
});

test("confirm first: metadata, authorize, wait for the phone, complete once", async () => {
  const ff = new FakeFirefox();
  const { flow, states } = start(ff);
  await until(() => flow.state === "allow", "allow");
  assert.deepEqual(flow.metadata.ipAddress, SENDER.remote);
  await flow.confirm();
  assert.equal(ff.authorizeSent, 1);
  await until(() => flow.state === "wait-for-supp", "wait-for-supp");
  ff.suppAuthorize();
  await until(() => flow.state === "complete", "complete");
  await new Promise((r) => setTimeout(r, 30));
  const names = ff.commands.map(([c]) => c);
  assert.equal(names[0], COMMANDS.metadata);
  assert.equal(names.filter((c) => c === COMMANDS.authorize).length, 1);
  assert.equal(names.filter((c) => c === COMMANDS.complete).length, 1);
  assert.equal(names.at(-1), COMMANDS.complete, "nothing after pair_complete");
  assert.ok(!names.includes(COMMANDS.decline));
  assert.deepEqual(states.filter((s, i) => s !== states[i - 1]),
                   ["loading", "allow", "authorizing", "wait-for-supp", "complete"]);
  onlyPairingCommands(ff);
});

test("the phone confirms first: the page says so, then completes right after authorize", async () => {
  const ff = new FakeFirefox();
  const { flow } = start(ff);
  await until(() => flow.state === "allow", "allow");
  ff.suppAuthorize();
  await until(() => flow.suppAuthorized, "suppAuthorized");
  assert.equal(flow.state, "allow");
  await flow.confirm();
  await until(() => flow.state === "complete", "complete");
  assert.ok(ff.commands.some(([c]) => c === COMMANDS.complete));
});

test("an authorize that fails inside Firefox shows its error, never 'complete'", async () => {
  const ff = new FakeFirefox({ authorizeFails: true, authorizeDelayMs: 20 });
  const { flow } = start(ff);
  await until(() => flow.state === "allow", "allow");
  ff.suppAuthorize(); // heartbeats say suppAuthorized: true before the authorize
  await until(() => flow.suppAuthorized, "suppAuthorized");
  await flow.confirm();
  await until(() => flow.ended, "end");
  assert.equal(flow.state, "failed");
  assert.equal(flow.error.kind, "firefox");
  assert.match(flow.error.message, /Unauthorized/);
  assert.ok(!ff.commands.some(([c]) => c === COMMANDS.complete));
});

test("timers are called as plain functions (browsers reject a foreign `this`)", async () => {
  const ff = new FakeFirefox();
  const strict = function (fn, ms) { assert.equal(this, undefined); return setTimeout(fn, ms); };
  const strictClear = function (id) { assert.equal(this, undefined); clearTimeout(id); };
  const { flow } = start(ff, { setTimer: strict, clearTimer: strictClear });
  await until(() => flow.state === "allow", "allow");
  await flow.confirm();
  ff.suppAuthorize();
  await until(() => flow.state === "complete", "complete");
});

test("decline: pair_decline once, heartbeat stops", async () => {
  const ff = new FakeFirefox();
  const { flow } = start(ff);
  await until(() => flow.state === "allow", "allow");
  await flow.decline();
  assert.equal(flow.state, "declined");
  const n = ff.commands.length;
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(ff.commands.length, n, "no heartbeat after declining");
  assert.equal(ff.commands.at(-1)[0], COMMANDS.decline);
});

test("Firefox forgets the flow (timeout, dialog closed): the page fails after missed beats", async () => {
  const ff = new FakeFirefox();
  const { flow } = start(ff);
  await until(() => flow.state === "allow", "allow");
  ff.exists = false;
  await until(() => flow.ended, "end");
  assert.equal(flow.error.kind, "gone");
});

test("a heartbeat err (the phone's channel broke) fails the page", async () => {
  const ff = new FakeFirefox();
  const { flow } = start(ff);
  await until(() => flow.state === "allow", "allow");
  ff._errored(new Error("Pairing channel error"));
  await until(() => flow.ended, "end");
  assert.deepEqual(flow.error, { kind: "firefox", message: "Pairing channel error" });
});

test("no WebChannel (page opened outside Firefox's dialog)", async () => {
  for (const [error, kind] of [[new NoChannelError("No Such Channel"), "no-channel"],
                               [new Error("no reply"), "gone"]]) {
    const flow = new AuthorityFlow({
      channel: { request: () => Promise.reject(error) }, channelId: CHANNEL_ID, timings: FAST });
    await flow.start();
    assert.equal(flow.state, "failed");
    assert.equal(flow.error.kind, kind);
  }
});

test("a wrong channel id gets no reply from Firefox", async () => {
  const ff = new FakeFirefox();
  const flow = new AuthorityFlow({ channel: ff.channel(), channelId: "BBECAwQFBgcICQoLDA0ODw",
                                   timings: FAST });
  await flow.start();
  assert.equal(flow.error.kind, "gone");
});
