// Drives the pages' own flow modules (flow.js, api.js, webchannel.js) against a running
// Foxden server, with FakeFirefox standing in for the browser: it exchanges the code like
// Firefox (HAWK-signed /v1/oauth/token with the PKCE verifier, then /v1/oauth/destroy),
// decrypts keys_jwe and asks the tokenserver with the kid as X-KeyID.
//
//   node tests/web/live-signin.mjs http://127.0.0.1:PORT   -> one JSON report on stdout
// Run by tests/web/test_live_signin.py; not a `node --test` file.

import { Api, FxaError } from "../../server/web/static/js/api.js";
import * as flow from "../../server/web/static/js/flow.js";
import { WebChannel } from "../../server/web/static/js/webchannel.js";
import { CLIENT_ID, FakeFirefox, OLDSYNC } from "./fakefirefox.mjs";

const origin = process.argv[2];
if (!origin) {
  console.error("usage: node live-signin.mjs <origin>");
  process.exit(2);
}
const api = new Api({ origin });

async function exchange(code, verifier, user) {
  const resp = await api.request("POST", "/oauth/token", {
    token: user.sessionToken,
    body: { client_id: CLIENT_ID, grant_type: "authorization_code", code, code_verifier: verifier },
  });
  await api.request("POST", "/oauth/destroy", { body: { client_id: CLIENT_ID, token: resp.refresh_token } });
  return resp;
}

async function tokenserver(firefox) {
  const { access_token: token } = await api.request("POST", "/oauth/token", {
    token: firefox.signedInUser.sessionToken,
    body: { client_id: CLIENT_ID, grant_type: "fxa-credentials", scope: OLDSYNC, ttl: 21600 },
  });
  const r = await fetch(`${origin}/1.0/sync/1.5`, {
    headers: { Accept: "application/json", Authorization: `Bearer ${token}`, "X-KeyID": firefox.scopedKeys[OLDSYNC].kid },
  });
  return { status: r.status, body: await r.json() };
}

function browser() {
  const firefox = new FakeFirefox({ exchange });
  return { firefox, channel: new WebChannel(firefox.target) };
}

async function errno(promise) {
  try {
    await promise;
    return null;
  } catch (err) {
    return err instanceof FxaError ? err.errno : String(err);
  }
}

/** What signin.js / signup.js do after the user typed the password. */
async function pageFlow({ firefox, channel }, login, action) {
  const status = await flow.fxaStatus(channel, 5000);
  const { params } = await flow.resolveOAuthParams(channel, flow.oauthParamsFromQuery(await firefox.urlQuery()));
  const account = await login();
  await flow.completeSignIn({
    api, channel, params, account, action,
    engines: { offered: status.capabilities.engines, declined: ["addresses"] },
  });
  return account;
}

const report = {};
const EMAIL = "alice@example.org";
const P1 = "correct horse battery staple";
const P2 = "a different, longer pass phrase";

// 1. Sign-up page: create, then hand over exactly like sign-in.
const a = browser();
await pageFlow(a, () => flow.createAccount(api, EMAIL, P1), "signup");
report.signup = {
  commands: a.firefox.commands(), key: a.firefox.scopedKeys[OLDSYNC],
  scope: a.firefox.tokenResponse.scope, services: a.firefox.services,
  hasRefresh: Boolean(a.firefox.tokenResponse.refresh_token),
};
report.signup.tokenserver = await tokenserver(a.firefox);

// 2. Sign-in page from a second Firefox, typing the email in another case (errno 120 retry).
const b = browser();
await pageFlow(b, () => flow.passwordLogin(api, "Alice@Example.ORG", P1), "signin");
report.signin = { commands: b.firefox.commands(), key: b.firefox.scopedKeys[OLDSYNC], email: b.firefox.signedInUser.email };
report.signin.tokenserver = await tokenserver(b.firefox);

// 3. Settings page of B: devices, connected services, disconnect A's device.
const sessionB = () => b.firefox.signedInUser.sessionToken;
const deviceA = await api.request("POST", "/account/device", {
  token: a.firefox.signedInUser.sessionToken, body: { name: "devA’s Firefox on host", type: "desktop", availableCommands: {} },
});
const devices = await api.devices(sessionB());
const clients = await api.attachedClients(sessionB());
await api.deviceDestroy(sessionB(), deviceA.id);
report.settings = {
  devices: devices.map((d) => ({ id: d.id, name: d.name, current: d.isCurrentDevice })),
  deviceA: deviceA.id,
  devicesAfter: (await api.devices(sessionB())).map((d) => d.id),
  clients: clients.map((c) => ({ clientId: c.clientId, current: c.isCurrentSession, name: c.name })),
};

// 4. Change password on B: kB kept, B gets the new session, A's session ends.
const before = sessionB();
const changed = await flow.changePassword({
  api, channel: b.channel, account: { email: b.firefox.signedInUser.email, uid: b.firefox.signedInUser.uid, sessionToken: before },
  oldPassword: P1, newPassword: P2,
});
report.change = {
  newSessionToFirefox: b.firefox.signedInUser.sessionToken === changed.sessionToken && changed.sessionToken !== before,
  lastCommand: b.firefox.commands().at(-1),
  newSessionStatus: (await api.sessionStatus(changed.sessionToken)).state,
  oldSessionErrno: await errno(api.sessionStatus(before)),
  otherSessionErrno: await errno(api.sessionStatus(a.firefox.signedInUser.sessionToken)),
};

// 5. A third Firefox signs in with the new password: the same Sync key as before.
const c = browser();
report.oldPasswordErrno = await errno(flow.passwordLogin(api, EMAIL, P1));
await pageFlow(c, () => flow.passwordLogin(api, EMAIL, P2), "signin");
report.afterChange = { key: c.firefox.scopedKeys[OLDSYNC] };
report.afterChange.tokenserver = await tokenserver(c.firefox);

// 6. Sign out of C.
const sessionC = c.firefox.signedInUser.sessionToken;
await flow.signOut({ api, channel: c.channel, account: { ...c.firefox.signedInUser } });
report.signout = { firefoxUser: c.firefox.signedInUser, sessionErrno: await errno(api.sessionStatus(sessionC)), lastCommand: c.firefox.commands().at(-1) };

// 7. Delete the account from B.
report.deleteWrongPasswordErrno = await errno(flow.deleteAccount({
  api, channel: null, account: { ...b.firefox.signedInUser }, password: "not it",
}));
await flow.deleteAccount({ api, channel: b.channel, account: { ...b.firefox.signedInUser }, password: P2 });
report.deleted = {
  firefoxUser: b.firefox.signedInUser, lastCommand: b.firefox.commands().at(-1),
  loginErrno: await errno(flow.passwordLogin(api, EMAIL, P2)),
};

// 8. The handover refused by Firefox: nothing is sent after can_link_account.
const d = browser();
d.firefox.canLink = false;
await pageFlow(d, () => flow.createAccount(api, "bob@example.org", P1), "signup").catch((err) => {
  report.refused = { kind: err.kind, commands: d.firefox.commands() };
});

process.stdout.write(JSON.stringify(report));
