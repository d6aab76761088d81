// The sign-in flow (flow.js) against a fake auth server and a fake Firefox: message order,
// message contents, keys_jwe contents, and the recoveries (errno 120, lost flow, refused link).
import { test } from "node:test";
import assert from "node:assert/strict";
import { load, onepw } from "./helpers.mjs";
import { CLIENT_ID, ENGINES, FakeFirefox, OLDSYNC, SCOPE } from "./fakefirefox.mjs";

const { bytesToHex, hexToBytes, xor } = await load("bytes.js");
const { bundle } = await load("keybundle.js");
const { deriveCredentials, deriveTokenCredentials } = await load("onepw.js");
const { FxaError } = await load("api.js");
const { WebChannel, NoChannelError, ChannelTimeout } = await load("webchannel.js");
const flow = await load("flow.js");
const { describe: explain } = await load("messages.js");

const [STRETCH] = onepw("client_credentials_v1").filter((v) => v.input.email_utf8 === "andré@example.org");
const [UNWRAP] = onepw("unwrap_kb");
const [EXPECTED] = onepw("oldsync_jwk").filter((v) => v.input.kB === UNWRAP.output.kB);
const EMAIL = STRETCH.input.email_utf8;
const PASSWORD = STRETCH.input.password_utf8;
const UID = "0123456789abcdef0123456789abcdef";
const KEY_FETCH = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f";
const SESSION = "a0".repeat(32);

/** An in-memory auth server with one account (the onepw vector's email/password/kB). */
class FakeServer {
  constructor() {
    this.calls = [];
    this.codes = new Map();
    this.authPW = STRETCH.output.authPW;
    this.wrapKb = UNWRAP.output.wrapKb;
  }
  async _bundle(kft, wrapKb) {
    const creds = await deriveTokenCredentials(kft, "keyFetchToken");
    return bytesToHex(await bundle(creds.extra, new Uint8Array(32), hexToBytes(wrapKb)));
  }
  async login(email, authPW, extra = {}) {
    this.calls.push(["login", { email, authPW, ...extra }]);
    if (email.toLowerCase() !== EMAIL.toLowerCase()) throw new FxaError(400, { errno: 102, message: "Unknown account" });
    if (email !== EMAIL) throw new FxaError(400, { errno: 120, email: EMAIL, message: "Incorrect email case" });
    if (authPW !== this.authPW) throw new FxaError(400, { errno: 103, message: "Incorrect password" });
    return { uid: UID, sessionToken: SESSION, keyFetchToken: KEY_FETCH, verified: true, authAt: 1 };
  }
  async accountKeys(kft) {
    this.calls.push(["keys", kft]);
    return { bundle: await this._bundle(kft, this.wrapKb) };
  }
  async scopedKeyData(st, clientId, scope) {
    this.calls.push(["scoped-key-data", { st, clientId, scope }]);
    return { [OLDSYNC]: { identifier: OLDSYNC, keyRotationSecret: "0".repeat(64), keyRotationTimestamp: EXPECTED.input.keyRotationTimestamp_json } };
  }
  async authorize(st, body) {
    this.calls.push(["authorize", body]);
    const code = `code${this.codes.size + 1}`;
    this.codes.set(code, body);
    return { code, state: body.state, redirect: "urn:ietf:wg:oauth:2.0:oob:oauth-redirect-webchannel", scope: body.scope };
  }
  async sessionDestroy(st) {
    this.calls.push(["session-destroy", st]);
    return {};
  }
  async passwordChangeStart(email, oldAuthPW, st) {
    this.calls.push(["change-start", { email, oldAuthPW, st }]);
    if (oldAuthPW !== this.authPW) throw new FxaError(400, { errno: 103 });
    return { keyFetchToken: KEY_FETCH, passwordChangeToken: "b1".repeat(32), verified: true };
  }
  async passwordChangeFinish(pct, body) {
    this.calls.push(["change-finish", { pct, ...body }]);
    this.authPW = body.authPW;
    this.wrapKb = body.wrapKb;
    return { uid: UID, sessionToken: "c2".repeat(32), verified: true, authAt: 2 };
  }
  /** What Firefox's code exchange would get back. */
  exchange(code) {
    const body = this.codes.get(code);
    if (!body) throw new Error("unknown code");
    return { access_token: "at", scope: body.scope, keys_jwe: body.keys_jwe, token_type: "bearer", expires_in: 3600 };
  }
}

function setup(opts = {}) {
  const server = new FakeServer();
  const firefox = new FakeFirefox({ exchange: (code) => server.exchange(code), ...opts });
  const channel = new WebChannel(firefox.target);
  return { server, firefox, channel };
}

async function signIn({ server, firefox, channel }, { email = EMAIL, query, engines } = {}) {
  const status = await flow.fxaStatus(channel);
  const urlParams = query === null ? null : flow.oauthParamsFromQuery(query ?? await firefox.urlQuery());
  const { params } = await flow.resolveOAuthParams(channel, urlParams);
  const account = await flow.passwordLogin(server, email, PASSWORD);
  const offered = status.capabilities.engines;
  await flow.completeSignIn({
    api: server, channel, params, account,
    engines: engines || { offered, declined: ["addresses", "creditcards"] },
  });
  return { status, params, account };
}

test("full sign-in: exact message order and contents, and Firefox gets the right Sync key", async () => {
  const env = setup();
  const { params } = await signIn(env);
  const { server, firefox } = env;

  assert.deepEqual(firefox.commands(), [
    "fxaccounts:fxa_status", "fxaccounts:oauth_flow_is_active",
    "fxaccounts:can_link_account", "fxaccounts:login", "fxaccounts:oauth_login",
  ]);
  assert.equal(firefox.rejected.length, 0, "every detail was a string");
  const byCommand = Object.fromEntries(firefox.received.map((m) => [m.command, m.data]));
  assert.deepEqual(byCommand["fxaccounts:fxa_status"], { service: "sync", isPairing: false, context: "oauth_webchannel_v1" });
  assert.deepEqual(byCommand["fxaccounts:can_link_account"], { email: EMAIL, uid: UID });
  assert.deepEqual(byCommand["fxaccounts:login"], {
    email: EMAIL, uid: UID, sessionToken: SESSION, verified: true,
    services: { sync: { offeredEngines: ENGINES, declinedEngines: ["addresses", "creditcards"] } },
  });
  assert.deepEqual(byCommand["fxaccounts:oauth_login"], {
    code: "code1", state: params.state, redirect: "urn:ietf:wg:oauth:2.0:oob:oauth-redirect-webchannel",
    action: "signin", scope: SCOPE,
  });

  // HTTP side: login body, keys with the keyFetchToken, scoped-key-data, authorization.
  assert.deepEqual(server.calls.map((c) => c[0]), ["login", "keys", "scoped-key-data", "authorize"]);
  assert.deepEqual(server.calls[0][1], { email: EMAIL, authPW: STRETCH.output.authPW });
  assert.equal(server.calls[1][1], KEY_FETCH);
  assert.deepEqual(server.calls[2][1], { st: SESSION, clientId: CLIENT_ID, scope: SCOPE });
  const auth = server.calls[3][1];
  assert.deepEqual(Object.keys(auth).sort(), ["access_type", "client_id", "code_challenge", "code_challenge_method", "keys_jwe", "response_type", "scope", "service", "state"]);
  assert.equal(auth.client_id, CLIENT_ID);
  assert.equal(auth.state, params.state);
  assert.equal(auth.code_challenge, params.code_challenge);
  assert.equal(auth.code_challenge_method, "S256");
  assert.equal(auth.access_type, "offline");
  assert.equal(auth.response_type, "code");
  assert.equal(auth.service, "sync");

  // Firefox decrypted keys_jwe to the oldsync key of this kB (onepw.json vector).
  assert.deepEqual(firefox.scopedKeys, {
    [OLDSYNC]: { kty: "oct", scope: OLDSYNC, k: EXPECTED.output.k_b64u, kid: EXPECTED.output.kid_utf8 },
  });
  assert.equal(firefox.signedInUser.sessionToken, SESSION);
  assert.equal(firefox.flows.size, 0);
});

test("errno 120: the login is retried once with the canonical email", async () => {
  const env = setup();
  await signIn(env, { email: "André@Example.org" });
  const logins = env.server.calls.filter((c) => c[0] === "login").map((c) => c[1]);
  assert.equal(logins.length, 2);
  assert.equal(logins[1].email, EMAIL);
  assert.equal(logins[1].authPW, STRETCH.output.authPW, "re-stretched with the canonical email");
  assert.equal(logins[1].originalLoginEmail, "André@Example.org");
  assert.equal(env.firefox.signedInUser.email, EMAIL);
});

test("wrong password and unknown account surface errno 103 / 102 with useful text", async () => {
  const env = setup();
  await assert.rejects(flow.passwordLogin(env.server, EMAIL, "nope"), (e) => e.errno === 103);
  await assert.rejects(flow.passwordLogin(env.server, "x@y.example", PASSWORD), (e) => e.errno === 102);
  assert.equal(explain(new FxaError(400, { errno: 103 })).field, "password");
  assert.equal(explain(new FxaError(400, { errno: 102 })).field, "email");
  assert.match(explain(new FxaError(429, { errno: 114, retryAfter: 30 })).text, /30 seconds/);
  assert.match(explain(new FxaError(429, { errno: 114, retryAfter: 600 })).text, /10 minutes/);
});

test("Firefox lost the flow (restart): oauth_flow_begin supplies fresh parameters", async () => {
  const env = setup();
  const query = await env.firefox.urlQuery();
  env.firefox.flows.clear(); // the browser restarted
  const { params } = await signIn(env, { query });
  assert.deepEqual(env.firefox.commands().slice(0, 3), [
    "fxaccounts:fxa_status", "fxaccounts:oauth_flow_is_active", "fxaccounts:oauth_flow_begin",
  ]);
  assert.equal(env.firefox.received[2].data.scopes.join(" "), SCOPE);
  assert.notEqual(params.state, new URLSearchParams(query).get("state"));
  assert.ok(env.firefox.scopedKeys[OLDSYNC]);
});

test("a URL without OAuth parameters starts a flow with oauth_flow_begin", async () => {
  const env = setup();
  await env.firefox.newFlow(); // some other flow is active
  await signIn(env, { query: "" });
  assert.ok(env.firefox.commands().includes("fxaccounts:oauth_flow_begin"));
  assert.ok(env.firefox.scopedKeys[OLDSYNC]);
});

test("can_link_account ok:false stops before login, and the session is destroyed", async () => {
  const env = setup({ canLink: false });
  await assert.rejects(signIn(env), (e) => e instanceof flow.FlowError && e.kind === "link-refused");
  assert.deepEqual(env.firefox.commands(), [
    "fxaccounts:fxa_status", "fxaccounts:oauth_flow_is_active", "fxaccounts:can_link_account",
  ]);
  assert.deepEqual(env.server.calls.at(-1), ["session-destroy", SESSION]);
  assert.match(explain(new flow.FlowError("link-refused", "x")).text, /stopped/);
});

test("INVALID_STATE on oauth_login: a fresh flow is begun and authorized once more", async () => {
  const env = setup();
  env.firefox.invalidStateOnce = true;
  await signIn(env);
  assert.deepEqual(env.firefox.commands().slice(2), [
    "fxaccounts:can_link_account", "fxaccounts:login", "fxaccounts:oauth_login",
    "fxaccounts:oauth_flow_begin", "fxaccounts:oauth_login",
  ]);
  const auths = env.server.calls.filter((c) => c[0] === "authorize");
  assert.equal(auths.length, 2);
  const last = env.firefox.received.at(-1).data;
  assert.equal(last.code, "code2");
  assert.equal(last.state, auths[1][1].state);
  assert.ok(env.firefox.scopedKeys[OLDSYNC]);
});

test("no reply at all: fxa_status times out (the page then shows its instructions)", async () => {
  const env = setup();
  env.firefox.silent = true;
  const started = Date.now();
  await assert.rejects(flow.fxaStatus(env.channel, 200), ChannelTimeout);
  assert.ok(Date.now() - started >= 190);
});

test("errno 2 No Such Channel (no messageId) fails every pending request", async () => {
  const env = setup();
  env.firefox.noSuchChannel = true;
  let noticed = false;
  env.channel.onNoChannel = () => { noticed = true; };
  await assert.rejects(flow.fxaStatus(env.channel, 5000), NoChannelError);
  assert.ok(noticed);
  await assert.rejects(env.channel.request("fxaccounts:oauth_flow_is_active"), NoChannelError);
});

test("an error reply (data.error) rejects with CommandError", async () => {
  const env = setup();
  await assert.rejects(env.channel.request("fxaccounts:bogus", {}), /Unknown command/);
});

test("change password keeps kB: wrapKb' = kB XOR new unwrapBKey; Firefox gets the new session", async () => {
  const env = setup();
  await signIn(env);
  const keyBefore = env.firefox.scopedKeys[OLDSYNC];
  const account = { email: EMAIL, uid: UID, sessionToken: SESSION };
  const updated = await flow.changePassword({ api: env.server, channel: env.channel, account, oldPassword: PASSWORD, newPassword: "a brand new password" });
  const finish = env.server.calls.find((c) => c[0] === "change-finish")[1];
  const fresh = await deriveCredentials(EMAIL, "a brand new password");
  assert.equal(finish.authPW, fresh.authPW);
  assert.equal(finish.wrapKb, bytesToHex(xor(hexToBytes(UNWRAP.output.kB), fresh.unwrapBKey)));
  assert.equal(finish.sessionToken, (await deriveTokenCredentials(SESSION, "sessionToken")).id);
  assert.equal(updated.sessionToken, "c2".repeat(32));
  assert.deepEqual(env.firefox.received.at(-1), {
    command: "fxaccounts:change_password",
    data: { email: EMAIL, uid: UID, sessionToken: "c2".repeat(32), verified: true },
  });

  // Sign in again with the new password: the very same Sync key.
  const again = setup();
  again.server.authPW = env.server.authPW;
  again.server.wrapKb = env.server.wrapKb;
  const query = await again.firefox.urlQuery();
  const params = flow.oauthParamsFromQuery(query);
  await flow.fxaStatus(again.channel);
  const acct = await flow.passwordLogin(again.server, EMAIL, "a brand new password");
  await flow.completeSignIn({ api: again.server, channel: again.channel, params, account: acct, engines: null });
  assert.deepEqual(again.firefox.scopedKeys[OLDSYNC], keyBefore);
  assert.deepEqual(again.firefox.services, { sync: {} }, "services.sync present even without a list");
});

test("sign out and delete tell Firefox after the server", async () => {
  const env = setup();
  await signIn(env);
  const account = { email: EMAIL, uid: UID, sessionToken: SESSION };
  await flow.signOut({ api: env.server, channel: env.channel, account });
  assert.deepEqual(env.server.calls.at(-1), ["session-destroy", SESSION]);
  assert.deepEqual(env.firefox.received.at(-1), { command: "fxaccounts:logout", data: { uid: UID } });
  assert.equal(env.firefox.signedInUser, null);

  const calls = [];
  const api = { accountDestroy: async (st, email, authPW) => calls.push({ st, email, authPW }) };
  await flow.deleteAccount({ api, channel: env.channel, account, password: PASSWORD });
  assert.deepEqual(calls, [{ st: SESSION, email: EMAIL, authPW: STRETCH.output.authPW }]);
  assert.deepEqual(env.firefox.received.at(-1), { command: "fxaccounts:delete", data: { uid: UID } });
});

test("oauthParamsFromQuery needs client_id, state, scope, code_challenge and keys_jwk", () => {
  const full = "client_id=5882386c6d801776&state=s&scope=a+b&code_challenge=c&code_challenge_method=S256&keys_jwk=k";
  assert.deepEqual(flow.oauthParamsFromQuery(full), {
    client_id: CLIENT_ID, state: "s", scope: "a b", code_challenge: "c", code_challenge_method: "S256",
    keys_jwk: "k", access_type: "offline", response_type: "code", action: "email",
  });
  for (const key of ["client_id", "state", "scope", "code_challenge", "keys_jwk"]) {
    const q = new URLSearchParams(full);
    q.delete(key);
    assert.equal(flow.oauthParamsFromQuery(q.toString()), null, key);
  }
});
