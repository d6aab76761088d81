// The supplicant (phone) side of Firefox QR pairing v1 (docs pairing.md §4, §7), DOM-free.
//
// /pair/supp runs this inside the phone's Firefox: it joins the relay channel named in the
// URL fragment, runs the TLS 1.3 PSK client of tlspsk.js over it, relays the phone's own
// OAuth request to the authority and hands the authorization code back to the phone's
// native code through the "deliver" callback (the page turns that into the WebChannel
// command fxaccounts:oauth_login). Node tests drive it with a fake or a real WebSocket.
//
//   const link = parseSupplicantLink(location.href);            // throws PairingLinkError
//   const flow = new SupplicantFlow({ ...link, relayUrl, WebSocket, deliver, onChange });
//   flow.start();  flow.confirm();  flow.cancel();  flow.dispose();
//
// States (flow.state), in order; any of them may end in "failed" (flow.error.kind says why):
//   connecting        socket opening, waiting for the relay's greeting {link, channelid}
//   handshake         TLS ClientHello sent, waiting for the authority's flight
//   waiting-metadata  pair:supp:request sent, waiting for pair:auth:metadata
//   confirm           flow.metadata/flow.sender known: the phone's user must confirm
//   waiting-authority pair:supp:authorize sent; waiting for pair:auth:authorize (the
//                     computer's user confirming); skipped when that came first
//   done              deliver() returned; on the authority's close_notify (or after
//                     doneGraceMs) we send ours and close the socket
// Error kinds: link (bad URL), connect (relay refused or unreachable: expired/used code),
//   relay-closed, wrong-key (TLS PSK mismatch: channel key/id wrong), protocol (TLS or
//   message error), bad-authorization (code/state invalid), declined (the authority closed
//   the channel before authorizing: "Cancel" on the computer, or its error/timeout),
//   timeout, cancelled (this user), deliver (the WebChannel hand-over threw).

import {
  AlertDescription,
  ClientConnection,
  PeerAlert,
  TLSAlertError,
  frameToRecord,
  recordToFrame,
} from "./tlspsk.js";

export const WEBCHANNEL_REDIRECT = "urn:ietf:wg:oauth:2.0:oob:oauth-redirect-webchannel";
export const WEBCHANNEL_CONTEXT = "oauth_webchannel_v1";
// FxA's pairing allow-list minus the Reference Browser, which Foxden's OAuth server does not
// know (server/oauth/clients.py).
export const PAIRING_CLIENTS = Object.freeze({
  a2270f727f45f648: "Firefox for Android",
  "1b1a3e44c54fbb58": "Firefox for iOS",
});

export const DEFAULT_TIMEOUTS = Object.freeze({
  connectMs: 20_000, // socket open + greeting
  handshakeMs: 20_000,
  metadataMs: 30_000, // desktop answers pair:supp:request at once
  // Both users confirming; below the relay's and desktop's 15-minute lifetime.
  flowMs: 10 * 60_000,
  doneGraceMs: 15_000,
});

const CHANNEL_ID = /^[A-Za-z0-9_-]{22}$/;
const B64URL = /^[A-Za-z0-9_-]+$/;
const CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
const OAUTH_CODE = /^[0-9a-f]{64}$/;
const SENDER_KEYS = ["ua", "city", "region", "country", "remote"];
const METADATA_KEYS = ["email", "displayName", "deviceName", "avatar"];
const MAX_STATE = 512; // FxA's validator
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

export class PairingLinkError extends Error {
  constructor(field, message) {
    super(message);
    this.kind = "link";
    this.field = field;
  }
}

export class SupplicantError extends Error {
  constructor(kind, message, cause) {
    super(message);
    this.kind = kind;
    if (cause !== undefined) this.cause = cause;
  }
}

function b64urlToBytes(text) {
  const std = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(std + "=".repeat((4 - (std.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function parseJwk(value) {
  // Desktop decodes keys_jwk with padding "reject" (FxAccountsPairing.sys.mjs): refuse it
  // here, where the user can still be told, rather than have the computer fail later.
  if (!value || !B64URL.test(value) || value.length % 4 === 1) {
    throw new PairingLinkError("keys_jwk", "keys_jwk is not unpadded base64url");
  }
  let jwk;
  try {
    jwk = JSON.parse(dec.decode(b64urlToBytes(value)));
  } catch {
    throw new PairingLinkError("keys_jwk", "keys_jwk is not a JSON web key");
  }
  const ok = jwk && typeof jwk === "object" && jwk.kty === "EC" && jwk.crv === "P-256" &&
    typeof jwk.x === "string" && typeof jwk.y === "string";
  if (!ok) throw new PairingLinkError("keys_jwk", "keys_jwk is not a P-256 public key");
  return jwk;
}

/**
 * The phone's OAuth request and the channel from a /pair/supp URL (pairing.md §4.1, §7.1).
 * Returns {params, channelId, channelKey, clientName}; `params` holds exactly the fields of
 * pair:supp:request (§4.2). Throws PairingLinkError naming the bad field.
 */
export function parseSupplicantLink(href) {
  const url = new URL(href);
  const q = url.searchParams;
  const frag = new URLSearchParams(url.hash.replace(/^#/, ""));

  const channelId = frag.get("channel_id") || "";
  if (!CHANNEL_ID.test(channelId)) {
    throw new PairingLinkError("channel_id", "the pairing code has no valid channel id");
  }
  const keyText = (frag.get("channel_key") || "").replace(/=+$/, "");
  let channelKey = null;
  if (B64URL.test(keyText)) {
    try {
      channelKey = b64urlToBytes(keyText);
    } catch {
      channelKey = null;
    }
  }
  if (!channelKey || channelKey.length !== 32) {
    throw new PairingLinkError("channel_key", "the pairing code has no valid channel key");
  }

  const clientId = (q.get("client_id") || "").toLowerCase();
  if (!Object.hasOwn(PAIRING_CLIENTS, clientId)) {
    // FxA: INVALID_PAIRING_CLIENT.
    throw new PairingLinkError("client_id", "this app may not use pairing");
  }
  const redirect = q.get("redirect_uri");
  const context = q.get("context");
  if ((redirect !== null && redirect !== WEBCHANNEL_REDIRECT) ||
      (context !== null && context !== WEBCHANNEL_CONTEXT)) {
    // DIVERGENCE: FxA would navigate to a relier's own redirect_uri with the code; every
    // pairing client Foxden knows finishes through the WebChannel, and sending a code to a
    // URL taken from the query would only serve a forged link.
    throw new PairingLinkError("redirect_uri", "this app's sign-in redirect is not supported");
  }
  if (q.get("code_challenge_method") !== "S256") {
    throw new PairingLinkError("code_challenge_method", "the app did not ask for S256 PKCE");
  }
  const challenge = q.get("code_challenge") || "";
  if (!CHALLENGE.test(challenge)) {
    throw new PairingLinkError("code_challenge", "the app's PKCE challenge is malformed");
  }
  const state = q.get("state") || "";
  if (!state || state.length > MAX_STATE) {
    throw new PairingLinkError("state", "the app's OAuth state is missing");
  }
  // Older Fenix sent "+" (%2B) between scopes: split on both, send them space-separated.
  const scopes = (q.get("scope") || "").split(/[\s+]+/).filter(Boolean);
  if (!scopes.length) throw new PairingLinkError("scope", "the app asked for no scope");
  const accessType = q.get("access_type") || "offline";
  if (accessType !== "offline" && accessType !== "online") {
    throw new PairingLinkError("access_type", "access_type must be offline or online");
  }
  const keysJwk = q.get("keys_jwk") || "";
  parseJwk(keysJwk);

  return {
    channelId,
    channelKey,
    clientName: PAIRING_CLIENTS[clientId],
    params: {
      access_type: accessType,
      client_id: clientId,
      code_challenge: challenge,
      code_challenge_method: "S256",
      keys_jwk: keysJwk,
      scope: [...new Set(scopes)].join(" "),
      state,
    },
  };
}

/** The relay's join URL for this page: same host, ws(s) matching the page's scheme. */
export function relayUrlFor(pageUrl, channelId) {
  const page = new URL(pageUrl);
  const scheme = page.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${page.host}/v1/ws/${channelId}`;
}

function pickStrings(obj, keys) {
  const out = {};
  if (!obj || typeof obj !== "object") return out;
  for (const key of keys) {
    if (typeof obj[key] === "string" && obj[key]) out[key] = obj[key];
  }
  return out;
}

/** {message, data} from one decrypted payload, or null if it is not a pairing message. */
export function parsePairingMessage(bytes) {
  let msg;
  try {
    msg = JSON.parse(dec.decode(bytes));
  } catch {
    return null;
  }
  if (!msg || typeof msg !== "object" || typeof msg.message !== "string") return null;
  const data = msg.data && typeof msg.data === "object" && !Array.isArray(msg.data) ? msg.data : {};
  return { message: msg.message, data };
}

/**
 * Checks pair:auth:authorize against the request (FXA supplicant.js validateApprovalData):
 * the code must look like an OAuth code and the state must be ours.
 */
export function checkAuthorization(data, expectedState) {
  if (typeof data.code !== "string" || !OAUTH_CODE.test(data.code)) {
    throw new SupplicantError("bad-authorization", "the computer sent an invalid code");
  }
  if (data.state !== expectedState) {
    throw new SupplicantError("bad-authorization", "the computer answered another request");
  }
  return { code: data.code, state: data.state };
}

/** The fxaccounts:oauth_login data (§4.3; FXA supplicant-webchannel.js sendCodeToRelier). */
export function oauthLoginData({ code, state }) {
  return { action: "pairing", code, state, redirect: WEBCHANNEL_REDIRECT };
}

/** Firefox for iOS wants an object detail; Fenix's extension and desktop want a string. */
export function detailIsObject(userAgent) {
  return /fxios/i.test(userAgent || "");
}

let messageCounter = 0;

/**
 * The WebChannelMessageToChrome detail for one command (pairing.md §7.6): a JSON string
 * for Fenix (its content script JSON.parses it) and desktop, an object for Firefox for iOS
 * (its user script forwards it as is and native code wants a dictionary). The messageId is
 * all digits because iOS parses it with Int(...).
 */
export function webChannelDetail(command, data, userAgent, messageId) {
  const id = messageId ?? `${Date.now()}${++messageCounter}`;
  const detail = { id: "account_updates", message: { command, data, messageId: id } };
  return detailIsObject(userAgent) ? detail : JSON.stringify(detail);
}

/** Dispatches fxaccounts:oauth_login on `target` (the page's window); returns the detail. */
export function sendOAuthLogin(target, data, { userAgent, CustomEventCtor = globalThis.CustomEvent } = {}) {
  const detail = webChannelDetail("fxaccounts:oauth_login", data, userAgent);
  target.dispatchEvent(new CustomEventCtor("WebChannelMessageToChrome", { detail }));
  return detail;
}

function isKeyMismatch(err) {
  const d = err && err.description;
  return (err instanceof PeerAlert || err instanceof TLSAlertError) &&
    (d === AlertDescription.DECRYPT_ERROR || d === AlertDescription.BAD_RECORD_MAC ||
     d === AlertDescription.UNKNOWN_PSK_IDENTITY);
}

export class SupplicantFlow {
  /**
   * @param {object} o
   * @param {object} o.params        pair:supp:request data (parseSupplicantLink().params)
   * @param {string} o.channelId
   * @param {Uint8Array} o.channelKey
   * @param {string} o.relayUrl      ws(s)://host/v1/ws/<channelId>
   * @param {Function} o.WebSocket   the constructor (globalThis.WebSocket in the page)
   * @param {Function} o.deliver     async ({action, code, state, redirect}) => any
   * @param {Function} [o.onChange]  (state, flow) => void, after every state change
   * @param {object} [o.timeouts]    overrides of DEFAULT_TIMEOUTS
   * @param {Function} [o.random]    for deterministic TLS randoms in tests
   */
  constructor({ params, channelId, channelKey, relayUrl, WebSocket, deliver, onChange,
                timeouts = {}, random, setTimer = globalThis.setTimeout,
                clearTimer = globalThis.clearTimeout }) {
    this.params = params;
    this.channelId = channelId;
    this.channelKey = channelKey;
    this.relayUrl = relayUrl;
    this.WebSocket = WebSocket;
    this.deliver = deliver;
    this.onChange = onChange || (() => {});
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...timeouts };
    this.random = random;
    // Called as plain functions: browsers throw on setTimeout with a foreign `this`.
    this._setTimer = (fn, ms) => setTimer(fn, ms);
    this._clearTimer = (id) => clearTimer(id);
    this.state = "idle";
    this.error = null;
    this.metadata = null; // {email?, displayName?, deviceName?, avatar?}
    this.sender = null; // the authority's relay metadata {ua?, remote?, ...}
    this.authorization = null; // {code, state} once pair:auth:authorize arrived
    this.confirmed = false;
    this.delivered = null; // what deliver() got
    this.log = []; // ["out"|"in", message name] - for tests and diagnostics
    this._socket = null;
    this._tls = null;
    this._greeted = false;
    this._handshakeDone = false;
    this._queue = Promise.resolve();
    this._phaseTimer = null;
    this._flowTimer = null;
    this._doneTimer = null;
    this._finished = new Promise((resolve) => { this._resolveFinished = resolve; });
  }

  /** Resolves with the final state ("done" or "failed") once the flow has ended. */
  get finished() { return this._finished; }

  get ended() { return this.state === "done" || this.state === "failed"; }

  start() {
    if (this.state !== "idle") throw new Error("already started");
    this._set("connecting");
    this._flowTimer = this._setTimer(
      () => this._fail("timeout", "the pairing took too long"), this.timeouts.flowMs);
    this._phase(this.timeouts.connectMs, "the Foxden server did not answer");
    let socket;
    try {
      socket = new this.WebSocket(this.relayUrl);
    } catch (err) {
      this._fail("connect", "cannot reach the Foxden server", err);
      return this;
    }
    this._socket = socket;
    socket.addEventListener("message", (ev) => this._enqueue(() => this._onFrame(ev.data)));
    socket.addEventListener("close", (ev) => this._enqueue(() => this._onClose(ev)));
    // An "error" is always followed by "close", which carries the outcome.
    socket.addEventListener("error", () => {});
    return this;
  }

  /** The phone's user accepted the account shown (state "confirm"). */
  async confirm() {
    if (this.state !== "confirm" || this.confirmed) return;
    this.confirmed = true;
    await this._enqueue(async () => {
      if (this.ended) return;
      await this._send({ message: "pair:supp:authorize", data: {} });
      if (this.authorization) await this._finish();
      else this._set("waiting-authority");
    });
  }

  /** The phone's user gave up: close the channel (desktop has no "declined" message). */
  cancel() {
    if (this.ended) return;
    this._fail("cancelled", "you cancelled the pairing");
  }

  /** Leaving the page: cancel if still running, drop every timer and the socket. */
  dispose() {
    this.cancel();
    this._clearTimer(this._doneTimer);
    this._closeSocket(1000);
  }

  // --- internals ---------------------------------------------------------------------

  _enqueue(fn) {
    // WebCrypto is async: frames must be handled one at a time, in arrival order.
    const run = this._queue.then(fn).catch((err) => this._onError(err));
    this._queue = run;
    return run;
  }

  _set(state) {
    this.state = state;
    try {
      this.onChange(state, this);
    } catch {
      // a broken UI callback must not break the protocol
    }
  }

  _phase(ms, why) {
    this._clearTimer(this._phaseTimer);
    this._phaseTimer = ms ? this._setTimer(() => this._fail("timeout", why), ms) : null;
  }

  async _onFrame(text) {
    if (this.ended && this.state !== "done") return;
    if (typeof text !== "string") throw new SupplicantError("protocol", "binary frame");
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      throw new SupplicantError("protocol", "the relay sent something that is not JSON");
    }
    if (!this._greeted) {
      if (!frame || frame.channelid !== this.channelId) {
        throw new SupplicantError("protocol", "the relay greeted another channel");
      }
      this._greeted = true;
      this._tls = await ClientConnection.create(this.channelKey, this.channelId,
                                                { random: this.random });
      this._set("handshake");
      this._phase(this.timeouts.handshakeMs, "the other device did not answer");
      this._flush();
      return;
    }
    if (!frame || typeof frame.message !== "string") {
      throw new SupplicantError("protocol", "the relay sent a frame without a message");
    }
    const sender = pickStrings(frame.sender, SENDER_KEYS);
    let events;
    try {
      events = await this._tls.receiveRecord(frameToRecord(frame.message));
    } finally {
      this._flush(); // client Finished, or the alert for the peer after an error
    }
    for (const ev of events) {
      if (ev.type === "handshakeComplete") {
        this._handshakeDone = true;
        await this._send({ message: "pair:supp:request", data: { ...this.params } });
        this._set("waiting-metadata");
        this._phase(this.timeouts.metadataMs, "the other device did not answer");
      } else if (ev.type === "data") {
        if (this.state === "done") continue; // nothing more to do but wait for the close
        await this._onMessage(parsePairingMessage(ev.data), sender);
      } else if (ev.type === "closed") {
        this._onPeerClosed();
      }
      if (this.ended && this.state !== "done") return;
    }
  }

  async _onMessage(msg, sender) {
    if (msg === null) throw new SupplicantError("protocol", "the other device sent garbage");
    this.log.push(["in", msg.message]);
    if (msg.message === "pair:auth:metadata") {
      if (this.metadata !== null || this.state !== "waiting-metadata") return;
      this.metadata = pickStrings(msg.data, METADATA_KEYS);
      this.sender = sender;
      this._phase(0);
      this._set("confirm");
    } else if (msg.message === "pair:auth:authorize") {
      if (this.authorization !== null || this.metadata === null) {
        throw new SupplicantError("protocol", "unexpected authorization");
      }
      this.authorization = checkAuthorization(msg.data, this.params.state);
      if (this.confirmed) await this._finish();
    }
    // Anything else is ignored, as FxA's supplicant does (pairing.md §4.2).
  }

  async _finish() {
    this._phase(0);
    const data = oauthLoginData(this.authorization);
    try {
      await this.deliver(data);
    } catch (err) {
      this._fail("deliver", "could not hand the sign-in to Firefox", err);
      return;
    }
    this.delivered = data;
    this._clearTimer(this._flowTimer);
    this._set("done");
    this._resolveFinished("done");
    // The authority closes the channel (desktop on pair_complete); don't hold it forever.
    this._doneTimer = this._setTimer(() => this._closeChannel(), this.timeouts.doneGraceMs);
  }

  _onPeerClosed() {
    if (this.state === "done") {
      this._clearTimer(this._doneTimer);
      this._closeChannel();
      return;
    }
    this._fail("declined", "the pairing was cancelled on the other device");
  }

  _closeChannel() {
    // Answer/send close_notify before closing the socket: FPC (desktop's channel) keeps
    // its websocket open after its own close() until the peer's close_notify arrives, and
    // our relay does not tell it that we left (server/pairing/relay.py), so without this
    // desktop's socket would linger until the relay's idle timeout.
    const tls = this._tls;
    if (tls && this._handshakeDone && tls.handshakeComplete && !tls.weClosed) {
      tls.close().then((records) => this._sendRecords(records), () => {})
        .finally(() => this._closeSocket(1000));
    } else {
      this._closeSocket(1000);
    }
  }

  _onClose(ev) {
    if (this.state === "done") {
      this._clearTimer(this._doneTimer);
      return;
    }
    if (this.ended) return;
    if (!this._greeted) {
      // Unknown/expired id (our relay: 1008 before any greeting) or no server at all.
      this._fail("connect", "this pairing code is no longer valid", ev);
    } else {
      this._fail("relay-closed", "the connection to the other device was lost", ev);
    }
  }

  _onError(err) {
    if (this.ended) return;
    if (isKeyMismatch(err) && !this._handshakeDone) {
      this._fail("wrong-key", "the pairing code does not match the other device", err);
    } else if (err instanceof SupplicantError) {
      this._fail(err.kind, err.message, err);
    } else {
      this._fail("protocol", "the secure channel failed", err);
    }
  }

  async _send(obj) {
    this.log.push(["out", obj.message]);
    const records = await this._tls.sendData(enc.encode(JSON.stringify(obj)));
    for (const rec of records) this._socket.send(recordToFrame(rec));
  }

  _flush() {
    if (this._tls) this._sendRecords(this._tls.dataToSend());
  }

  _sendRecords(records) {
    if (!this._socket) return;
    for (const rec of records) {
      try {
        this._socket.send(recordToFrame(rec));
      } catch {
        // socket already closing: the close event reports it
      }
    }
  }

  _closeSocket(code) {
    const s = this._socket;
    if (!s) return;
    try {
      if (s.readyState === 0 || s.readyState === 1) s.close(code);
    } catch {
      // already gone
    }
  }

  _fail(kind, message, cause) {
    if (this.ended) return;
    this.error = new SupplicantError(kind, message, cause);
    this._clearTimer(this._phaseTimer);
    this._clearTimer(this._flowTimer);
    this._clearTimer(this._doneTimer);
    // Tell the authority we are gone; desktop's flow ignores a peer's close_notify (it
    // listens for "message" and "error" only), but its channel then shuts its socket.
    this._closeChannel();
    this._set("failed");
    this._resolveFinished("failed");
  }
}
