// The oauth_webchannel_v1 sign-in, step by step (firefox-signin.md §2.4), without the DOM:
// the page (signin.js, signup.js, settings.js) supplies an Api and a WebChannel.
//
// Message order on the channel:
//   fxaccounts:fxa_status -> [fxaccounts:oauth_flow_is_active -> fxaccounts:oauth_flow_begin]
//   ... (HTTP: login, keys, scoped-key-data, oauth/authorization) ...
//   fxaccounts:can_link_account (wait for ok:true) -> fxaccounts:login -> fxaccounts:oauth_login

import { bytesToHex } from "./bytes.js";
import { buildKeysJwe } from "./jwe.js";
import { computeKB, rewrapKB, unbundleKeys } from "./keybundle.js";
import { deriveCredentials, deriveTokenCredentials } from "./onepw.js";
import { OLDSYNC_SCOPE, buildScopedKeys } from "./scopedkeys.js";
import { ERRNO, FxaError } from "./api.js";
import { ChannelTimeout, CommandError, NoChannelError } from "./webchannel.js";

export const FIREFOX_CLIENT_ID = "5882386c6d801776";
export const SYNC_SCOPES = [OLDSYNC_SCOPE, "profile"];
export const OAUTH_REDIRECT = "urn:ietf:wg:oauth:2.0:oob:oauth-redirect-webchannel";
export const STATUS_TIMEOUT_MS = 1500;
const SHORT_TIMEOUT_MS = 3000;
// login may take ~10 s while Firefox's push subscription times out (§1.1); be generous.
const LONG_TIMEOUT_MS = 120000;

export class FlowError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

const OAUTH_KEYS = [
  "client_id", "state", "scope", "code_challenge", "code_challenge_method", "keys_jwk",
  "access_type", "response_type", "action",
];

/** The OAuth parameters Firefox put in the page URL, or null when they are incomplete. */
export function oauthParamsFromQuery(search) {
  const q = new URLSearchParams(search);
  const p = {};
  for (const key of OAUTH_KEYS) {
    if (q.get(key)) {
      p[key] = q.get(key);
    }
  }
  return normalizeOAuthParams(p);
}

export function normalizeOAuthParams(p) {
  if (!p || !p.client_id || !p.state || !p.scope || !p.code_challenge || !p.keys_jwk) {
    return null;
  }
  return {
    client_id: p.client_id,
    state: p.state,
    scope: p.scope,
    code_challenge: p.code_challenge,
    code_challenge_method: p.code_challenge_method || "S256",
    keys_jwk: p.keys_jwk,
    access_type: p.access_type || "offline",
    response_type: p.response_type || "code",
    action: p.action || "email",
  };
}

/** fxa_status; resolves with its data, rejects NoChannelError / ChannelTimeout. */
export function fxaStatus(channel, timeoutMs = STATUS_TIMEOUT_MS) {
  return channel.request(
    "fxaccounts:fxa_status",
    { service: "sync", isPairing: false, context: "oauth_webchannel_v1" },
    { timeoutMs },
  );
}

/**
 * The OAuth parameters to use: the URL's while Firefox still holds a flow, otherwise a fresh
 * flow from oauth_flow_begin. Returns {params, source: "url" | "browser"}.
 */
export async function resolveOAuthParams(channel, urlParams) {
  let isActive = null; // null = unknown (older Firefox answers with an error)
  try {
    const reply = await channel.request("fxaccounts:oauth_flow_is_active", {}, { timeoutMs: SHORT_TIMEOUT_MS });
    if (typeof reply.isActive === "boolean") {
      isActive = reply.isActive;
    }
  } catch (err) {
    if (err instanceof NoChannelError) {
      throw err;
    }
  }
  if (urlParams && isActive !== false) {
    return { params: urlParams, source: "url" };
  }
  const fresh = await beginFlow(channel);
  if (fresh) {
    return { params: fresh, source: "browser" };
  }
  if (urlParams) {
    return { params: urlParams, source: "url" };
  }
  throw new FlowError("no-flow", "Firefox did not start a sign-in.");
}

export async function beginFlow(channel) {
  try {
    const reply = await channel.request(
      "fxaccounts:oauth_flow_begin", { scopes: SYNC_SCOPES }, { timeoutMs: SHORT_TIMEOUT_MS },
    );
    return normalizeOAuthParams(reply);
  } catch (err) {
    if (err instanceof NoChannelError) {
      throw err;
    }
    return null;
  }
}

/**
 * POST /v1/account/login?keys=true, retrying once with the canonical address on errno 120.
 * Returns {email, uid, sessionToken, keyFetchToken, verified, authAt, unwrapBKey}.
 */
export async function passwordLogin(api, email, password) {
  let creds = await deriveCredentials(email, password);
  let canonical = email;
  let result;
  try {
    result = await api.login(email, creds.authPW);
  } catch (err) {
    if (!(err instanceof FxaError) || err.errno !== ERRNO.INCORRECT_EMAIL_CASE || !err.email ||
        err.email === email) {
      throw err;
    }
    canonical = err.email;
    creds = await deriveCredentials(canonical, password);
    result = await api.login(canonical, creds.authPW, { originalLoginEmail: email });
  }
  return { ...result, email: result.email || canonical, unwrapBKey: creds.unwrapBKey };
}

/** POST /v1/account/create?keys=true. */
export async function createAccount(api, email, password) {
  const creds = await deriveCredentials(email, password);
  const result = await api.create(email, creds.authPW);
  return { ...result, email: result.email || email, unwrapBKey: creds.unwrapBKey };
}

/** GET /v1/account/keys with the keyFetchToken, unbundle -> kB (Uint8Array). */
export async function fetchKB(api, keyFetchToken, unwrapBKey) {
  if (!keyFetchToken) {
    throw new FlowError("no-keys", "The server did not send a key fetch token.");
  }
  const [{ bundle }, tokenCreds] = await Promise.all([
    api.accountKeys(keyFetchToken),
    deriveTokenCredentials(keyFetchToken, "keyFetchToken"),
  ]);
  const { wrapKB } = await unbundleKeys(tokenCreds.extra, bundle);
  return computeKB(wrapKB, unwrapBKey);
}

/** scoped-key-data -> keys_jwe -> /v1/oauth/authorization. Returns the authorization reply. */
export async function authorizeFirefox(api, { sessionToken, uid, kB, params }) {
  const data = await api.scopedKeyData(sessionToken, params.client_id, params.scope);
  const scopedKeys = await buildScopedKeys(kB, uid, data);
  if (params.scope.split(/\s+/).includes(OLDSYNC_SCOPE) && !scopedKeys[OLDSYNC_SCOPE]) {
    throw new FlowError("no-keys", "The server did not return the Sync key data.");
  }
  const keysJwe = await buildKeysJwe(params.keys_jwk, scopedKeys);
  const reply = await api.authorize(sessionToken, {
    client_id: params.client_id,
    state: params.state,
    scope: params.scope,
    access_type: "offline",
    response_type: "code",
    code_challenge: params.code_challenge,
    code_challenge_method: "S256",
    keys_jwe: keysJwe,
    service: "sync",
  });
  if (!reply || !reply.code) {
    throw new FlowError("no-code", "The server did not return an authorization code.");
  }
  return reply;
}

function isInvalidState(err) {
  return err instanceof CommandError && /state/i.test(String(err.message));
}

/**
 * Hand the account to Firefox: can_link_account -> login -> oauth_login.
 * account: {email, uid, sessionToken}; engines: {offered: [...], declined: [...]} or null.
 * reauthorize(newParams) is called once if Firefox lost the flow (INVALID_STATE) and must
 * return a fresh authorization reply for the new parameters.
 */
export async function handOverToFirefox(channel, { account, auth, params, engines, action = "signin", reauthorize }) {
  const link = await channel.request("fxaccounts:can_link_account", { email: account.email, uid: account.uid });
  if (!link || link.ok !== true) {
    throw new FlowError("link-refused", "Firefox did not allow this account to be linked.");
  }
  const sync = {};
  if (engines) {
    sync.offeredEngines = engines.offered;
    sync.declinedEngines = engines.declined;
  }
  // Firefox handles messages strictly in order, so oauth_login can follow at once (§2.4 step 6).
  const login = channel.request("fxaccounts:login", {
    email: account.email,
    uid: account.uid,
    sessionToken: account.sessionToken,
    verified: true,
    services: { sync },
  }, { timeoutMs: LONG_TIMEOUT_MS });
  const oauthLogin = (reply, state) => channel.request("fxaccounts:oauth_login", {
    code: reply.code,
    state,
    redirect: OAUTH_REDIRECT,
    action,
    scope: reply.scope || params.scope,
  }, { timeoutMs: LONG_TIMEOUT_MS });
  const first = oauthLogin(auth, params.state);
  first.catch(() => {}); // awaited below; keeps a failed login from leaving it unhandled
  await login;
  try {
    await first;
  } catch (err) {
    if (!isInvalidState(err) || !reauthorize) {
      throw err;
    }
    const fresh = await beginFlow(channel);
    if (!fresh) {
      throw err;
    }
    await oauthLogin(await reauthorize(fresh), fresh.state);
  }
}

/** The whole sign-in after the password was typed. Returns the account. */
export async function completeSignIn({ api, channel, params, account, engines, action = "signin", onStep = () => {} }) {
  onStep("keys");
  const kB = await fetchKB(api, account.keyFetchToken, account.unwrapBKey);
  onStep("authorize");
  const reauthorize = (p) => authorizeFirefox(api, { sessionToken: account.sessionToken, uid: account.uid, kB, params: p });
  const auth = await reauthorize(params);
  onStep("firefox");
  try {
    await handOverToFirefox(channel, { account, auth, params, engines, action, reauthorize });
  } catch (err) {
    if (err instanceof FlowError && err.kind === "link-refused") {
      // Do not leave an unused session behind.
      await api.sessionDestroy(account.sessionToken).catch(() => {});
    }
    throw err;
  }
  onStep("done");
  return account;
}

// --- settings ---------------------------------------------------------------------------

/**
 * Change the password and keep kB: old unwrapBKey -> keys via change/start's keyFetchToken ->
 * kB -> wrapKb' = kB XOR new unwrapBKey -> change/finish. Then tell Firefox the new session.
 */
export async function changePassword({ api, channel, account, oldPassword, newPassword }) {
  let email = account.email;
  let oldCreds = await deriveCredentials(email, oldPassword);
  let start;
  try {
    start = await api.passwordChangeStart(email, oldCreds.authPW, account.sessionToken);
  } catch (err) {
    if (!(err instanceof FxaError) || err.errno !== ERRNO.INCORRECT_EMAIL_CASE || !err.email) {
      throw err;
    }
    email = err.email;
    oldCreds = await deriveCredentials(email, oldPassword);
    start = await api.passwordChangeStart(email, oldCreds.authPW, account.sessionToken);
  }
  const kB = await fetchKB(api, start.keyFetchToken, oldCreds.unwrapBKey);
  const newCreds = await deriveCredentials(email, newPassword);
  const body = { authPW: newCreds.authPW, wrapKb: bytesToHex(rewrapKB(kB, newCreds.unwrapBKey)) };
  if (account.sessionToken) {
    body.sessionToken = (await deriveTokenCredentials(account.sessionToken, "sessionToken")).id;
  }
  const finish = await api.passwordChangeFinish(start.passwordChangeToken, body);
  const sessionToken = (finish && finish.sessionToken) || account.sessionToken;
  const uid = (finish && finish.uid) || account.uid;
  if (channel) {
    await channel.request("fxaccounts:change_password", {
      email, uid, sessionToken, verified: true,
    }, { timeoutMs: LONG_TIMEOUT_MS }).catch((err) => {
      if (!(err instanceof ChannelTimeout)) {
        throw err;
      }
    });
  }
  return { ...account, email, uid, sessionToken };
}

export async function deleteAccount({ api, channel, account, password }) {
  const creds = await deriveCredentials(account.email, password);
  await api.accountDestroy(account.sessionToken, account.email, creds.authPW);
  if (channel) {
    await channel.request("fxaccounts:delete", { uid: account.uid }, { timeoutMs: SHORT_TIMEOUT_MS }).catch(() => {});
  }
}

export async function signOut({ api, channel, account }) {
  try {
    await api.sessionDestroy(account.sessionToken);
  } catch (err) {
    // An already invalid session is as good as destroyed.
    if (!(err instanceof FxaError) || err.errno !== ERRNO.INVALID_TOKEN) {
      throw err;
    }
  }
  if (channel) {
    await channel.request("fxaccounts:logout", { uid: account.uid }, { timeoutMs: SHORT_TIMEOUT_MS }).catch(() => {});
  }
}
