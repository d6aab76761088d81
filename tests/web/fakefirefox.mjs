// A stand-in for Firefox's side of the WebChannel (firefox-signin.md §2.2-2.3), for tests.
// It holds OAuth flows like FxAccountsOAuth (state, PKCE verifier, ECDH key), answers the
// account_updates commands one at a time in arrival order, refuses non-string details, and on
// oauth_login checks the state, exchanges the code (via `exchange`) and decrypts keys_jwe with
// its private key, validating the scoped keys as Firefox's validScopedKeys does.

import { b64urlDecode, b64urlEncode, bytesToHex, fromUtf8, randomBytes, utf8 } from "../../server/web/static/js/bytes.js";
import { decrypt } from "../../server/web/static/js/jwe.js";

export const CLIENT_ID = "5882386c6d801776";
export const SCOPE = "https://identity.mozilla.com/apps/oldsync profile";
export const OLDSYNC = "https://identity.mozilla.com/apps/oldsync";
export const ENGINES = ["addons", "bookmarks", "history", "passwords", "prefs", "tabs", "addresses", "creditcards"];

const subtle = globalThis.crypto.subtle;

export function validScopedKeys(keys) {
  for (const [scope, key] of Object.entries(keys)) {
    if (!key.scope || !key.kid || !key.kty || !key.k) return false;
    if (key.scope !== scope || key.kty !== "oct") return false;
    const dash = key.kid.indexOf("-");
    if (dash < 0) return false;
    const ts = Number(key.kid.slice(0, dash));
    if (!(ts > 0) || Number.isNaN(new Date(ts).getTime())) return false;
    b64urlDecode(key.kid.slice(dash + 1));
    b64urlDecode(key.k);
  }
  return true;
}

export class FakeFirefox {
  /**
   * exchange(code, verifier, signedInUser) -> token response ({keys_jwe, scope, ...}).
   * Options: canLink (bool), flowActive (bool), invalidStateOnce (bool), signedInUser.
   */
  constructor({ target = new EventTarget(), exchange, canLink = true, engines = ENGINES, signedInUser = null } = {}) {
    this.target = target;
    this.exchange = exchange;
    this.canLink = canLink;
    this.engines = engines;
    this.signedInUser = signedInUser;
    this.flows = new Map();
    this.received = []; // {command, data}
    this.rejected = []; // details that were not strings
    this.services = null;
    this.scopedKeys = null;
    this.tokenResponse = null;
    this.invalidStateOnce = false;
    this.silent = false; // true: never answer (a page opened outside Firefox)
    this.noSuchChannel = false; // true: answer every message with errno 2
    this._chain = Promise.resolve();
    target.addEventListener("WebChannelMessageToChrome", (event) => this._onMessage(event));
  }

  /** A flow as promiseConnectAccountURI makes one; returns the URL query parameters. */
  async newFlow() {
    const state = b64urlEncode(randomBytes(16));
    const verifier = b64urlEncode(randomBytes(32));
    const challenge = b64urlEncode(new Uint8Array(await subtle.digest("SHA-256", utf8(verifier))));
    const pair = await subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
    const pub = await subtle.exportKey("jwk", pair.publicKey);
    const priv = await subtle.exportKey("jwk", pair.privateKey);
    this.flows.set(state, { verifier, priv });
    const keysJwk = b64urlEncode(utf8(JSON.stringify({ crv: "P-256", ext: true, key_ops: [], kty: "EC", x: pub.x, y: pub.y })));
    return {
      client_id: CLIENT_ID, action: "email", response_type: "code", access_type: "offline",
      scope: SCOPE, state, code_challenge: challenge, code_challenge_method: "S256", keys_jwk: keysJwk,
    };
  }

  async urlQuery(entrypoint = "preferences") {
    const p = await this.newFlow();
    return new URLSearchParams({
      context: "oauth_webchannel_v1", entrypoint, action: "email", service: "sync",
      client_id: p.client_id, response_type: p.response_type, access_type: p.access_type,
      scope: p.scope, state: p.state, code_challenge: p.code_challenge,
      code_challenge_method: p.code_challenge_method, keys_jwk: p.keys_jwk,
    }).toString();
  }

  commands() {
    return this.received.map((m) => m.command);
  }

  _reply(detail) {
    this.target.dispatchEvent(new CustomEvent("WebChannelMessageToContent", { detail }));
  }

  _onMessage(event) {
    if (typeof event.detail !== "string") {
      this.rejected.push(event.detail);
      return;
    }
    const { id, message } = JSON.parse(event.detail);
    if (this.silent || id !== "account_updates") {
      return;
    }
    if (this.noSuchChannel) {
      setTimeout(() => this._reply({ id, message: { errno: 2, error: "No Such Channel" } }), 0);
      return;
    }
    this.received.push({ command: message.command, data: message.data });
    // Strictly one after another, like FxAccountsWebChannel's _lastPromise chain.
    this._chain = this._chain.then(async () => {
      let data;
      try {
        data = await this._handle(message.command, message.data || {});
      } catch (err) {
        data = { error: { message: err.message, stack: "" } };
      }
      if (data !== undefined) {
        this._reply({ id, message: { command: message.command, messageId: message.messageId, data } });
      }
    });
  }

  async _handle(command, data) {
    switch (command) {
      case "fxaccounts:fxa_status":
        return {
          signedInUser: this.signedInUser, clientId: CLIENT_ID,
          capabilities: { multiService: true, pairing: false, choose_what_to_sync: true, keys_optional: true, can_link_account_uid: true, engines: this.engines },
        };
      case "fxaccounts:oauth_flow_is_active":
        return { isActive: this.flows.size > 0 };
      case "fxaccounts:oauth_flow_begin": {
        for (const s of data.scopes || []) {
          if (!["profile", "profile:write", OLDSYNC].includes(s)) throw new Error("INVALID_SCOPES");
        }
        return this.newFlow();
      }
      case "fxaccounts:can_link_account":
        return { ok: this.canLink };
      case "fxaccounts:login":
        this.signedInUser = { email: data.email, sessionToken: data.sessionToken, uid: data.uid, verified: data.verified };
        this.services = data.services || null;
        return { ok: true };
      case "fxaccounts:oauth_login": {
        if (this.invalidStateOnce) {
          this.invalidStateOnce = false;
          this.flows.clear();
          throw new Error("INVALID_STATE");
        }
        const flow = this.flows.get(data.state);
        if (!flow) throw new Error("INVALID_STATE");
        if (!this.signedInUser) throw new Error("No signed in user");
        const resp = await this.exchange(data.code, flow.verifier, this.signedInUser);
        if (typeof resp.scope !== "string") throw new Error("token response has no scope");
        const keys = JSON.parse(fromUtf8(await decrypt(resp.keys_jwe, flow.priv)));
        if (!validScopedKeys(keys)) throw new Error("ERROR_INVALID_SCOPED_KEYS");
        this.tokenResponse = resp;
        this.scopedKeys = keys;
        this.flows.clear();
        this.signedInUser.verified = true;
        return { ok: true };
      }
      case "fxaccounts:change_password":
        this.signedInUser = { ...this.signedInUser, ...data };
        return { ok: true };
      case "fxaccounts:logout":
      case "fxaccounts:delete":
        if (this.signedInUser && this.signedInUser.uid === data.uid) this.signedInUser = null;
        return { ok: true };
      case "fxaccounts:sync_preferences":
        return { ok: true };
      default:
        throw new Error(`Unknown command ${command}`);
    }
  }
}

export { bytesToHex };
