// The desktop-authority page's logic (pairing.md §6), DOM-free.
//
// Desktop Firefox is the authority: its chrome code (FxAccountsPairing.sys.mjs) owns the
// relay socket, the TLS channel, the auth-server calls and keys_jwe. After the phone's
// pair:supp:request it loads our /oauth?…&channel_id=…&redirect_uri=…pair-auth-webchannel
// into its pairing dialog; this page only shows what is happening and relays the user's
// decision, with exactly these WebChannel commands, each with data {channel_id} (§6.3):
//   fxaccounts:pair_supplicant_metadata  -> {ua, city, region, country, ipAddress} (any missing)
//   fxaccounts:pair_heartbeat (every 1 s) -> {suppAuthorized: bool} | {err: "<message>"} | {}
//   fxaccounts:pair_authorize            -> {} once Firefox sent pair:auth:authorize (or failed:
//                                           errors only show up in the next heartbeat)
//   fxaccounts:pair_decline              -> {}; Firefox closes the channel, forgets the flow
//   fxaccounts:pair_complete             -> {}; sent once, after both sides confirmed
// Never anything else: an unknown command makes Firefox finalize every pairing flow.
// Firefox does not answer at all for an unknown channel_id (flow gone: timed out,
// completed, declined), so every request has a deadline.
//
// States (flow.state): loading -> allow -> authorizing -> wait-for-supp -> complete;
//   allow -> declined; any -> failed (flow.error = {kind, message}); kinds: no-channel
//   (Firefox did not answer this page), gone (the flow disappeared), firefox (heartbeat
//   err), declined-failed (pair_decline unanswered).
// FF quirk (FxAccountsPairing.sys.mjs): a heartbeat after the channel closed without an
// error throws inside Firefox and answers {}; the next one carries the err. {} is "no news".

import { NoChannelError } from "../js/webchannel.js";

export const COMMANDS = Object.freeze({
  metadata: "fxaccounts:pair_supplicant_metadata",
  heartbeat: "fxaccounts:pair_heartbeat",
  authorize: "fxaccounts:pair_authorize",
  decline: "fxaccounts:pair_decline",
  complete: "fxaccounts:pair_complete",
});
export const PAIR_AUTH_REDIRECT = "urn:ietf:wg:oauth:2.0:oob:pair-auth-webchannel";
const CHANNEL_ID = /^[A-Za-z0-9_-]{22}$/;

export const DEFAULT_TIMINGS = Object.freeze({
  heartbeatMs: 1000, // FxA's authority broker polls every second
  replyMs: 5000, // a local WebChannel round trip takes milliseconds
  authorizeMs: 60_000, // Firefox calls scoped-key-data and /v1/oauth/authorization first
  missedHeartbeats: 4,
});

/** {clientId, scope, email, uid, channelId} from the URL Firefox opened, or null. */
export function parseAuthorityUrl(href) {
  const q = new URL(href).searchParams;
  const channelId = q.get("channel_id") || "";
  if (q.get("redirect_uri") !== PAIR_AUTH_REDIRECT || !CHANNEL_ID.test(channelId)) return null;
  return {
    channelId,
    clientId: q.get("client_id") || "",
    scope: q.get("scope") || "",
    email: q.get("email") || "",
    uid: q.get("uid") || "",
  };
}

export class AuthorityFlow {
  /**
   * @param {object} o
   * @param {{request: Function}} o.channel  webchannel.js WebChannel (or a fake)
   * @param {string} o.channelId
   * @param {Function} [o.onChange]  (state, flow) => void
   */
  constructor({ channel, channelId, onChange, timings = {},
                setTimer = globalThis.setTimeout, clearTimer = globalThis.clearTimeout }) {
    this.channel = channel;
    this.channelId = channelId;
    this.onChange = onChange || (() => {});
    this.t = { ...DEFAULT_TIMINGS, ...timings };
    // Called as plain functions: browsers throw on setTimeout with a foreign `this`.
    this._setTimer = (fn, ms) => setTimer(fn, ms);
    this._clearTimer = (id) => clearTimer(id);
    this.state = "idle";
    this.metadata = null;
    this.suppAuthorized = false;
    this.authorized = false;
    this.error = null;
    this.sent = []; // commands sent, in order (tests check nothing exotic goes out)
    this._timer = null;
    this._missed = 0;
    this._beating = false;
    this._inFlight = false;
    this._completeSent = false;
  }

  get ended() {
    return ["complete", "declined", "failed"].includes(this.state);
  }

  _set(state) {
    this.state = state;
    try {
      this.onChange(state, this);
    } catch {
      // the UI must not break the protocol
    }
  }

  _request(command, timeoutMs) {
    this.sent.push(command);
    return this.channel.request(command, { channel_id: this.channelId }, { timeoutMs });
  }

  _fail(kind, message) {
    if (this.ended) return;
    this._stopHeartbeat();
    this.error = { kind, message };
    this._set("failed");
  }

  async start() {
    this._set("loading");
    try {
      this.metadata = await this._request(COMMANDS.metadata, this.t.replyMs);
    } catch (err) {
      this._fail(err instanceof NoChannelError ? "no-channel" : "gone",
                 "Firefox did not answer this page");
      return;
    }
    if (this.ended) return;
    this._set("allow");
    this._startHeartbeat();
  }

  async confirm() {
    if (this.state !== "allow") return;
    this._set("authorizing");
    try {
      await this._request(COMMANDS.authorize, this.t.authorizeMs);
    } catch {
      this._fail("gone", "Firefox did not answer the confirmation");
      return;
    }
    if (this.ended) return;
    // Firefox answers {} even when authorizing failed; only a heartbeat tells.
    this.authorized = true;
    if (!this.suppAuthorized) this._set("wait-for-supp");
    this._beat(); // at once: the phone may already have confirmed
  }

  async decline() {
    if (this.ended || this.state === "authorizing") return;
    this._stopHeartbeat();
    this._set("declined");
    try {
      await this._request(COMMANDS.decline, this.t.replyMs);
    } catch {
      // The flow was gone already: the phone is told by the closed channel either way.
    }
  }

  _startHeartbeat() {
    this._beating = true;
    this._timer = this._setTimer(() => this._beat(), this.t.heartbeatMs);
  }

  _stopHeartbeat() {
    this._beating = false;
    this._clearTimer(this._timer);
    this._timer = null;
  }

  async _beat() {
    if (!this._beating || this.ended || this._inFlight) return;
    this._inFlight = true;
    this._clearTimer(this._timer);
    this._timer = null;
    // Only a heartbeat asked after pair_authorize answered can tell that authorizing worked
    // (Firefox runs heartbeats concurrently with the authorize call).
    const afterAuthorize = this.authorized;
    let reply;
    try {
      reply = await this._request(COMMANDS.heartbeat, this.t.replyMs);
      this._missed = 0;
    } catch {
      reply = null;
      this._missed += 1;
    } finally {
      this._inFlight = false;
    }
    if (!this._beating || this.ended) return;
    if (reply && reply.err) {
      this._fail("firefox", String(reply.err));
      return;
    }
    if (reply && reply.suppAuthorized === true && !this.suppAuthorized) {
      this.suppAuthorized = true;
      this._set(this.state); // lets the page say "the phone has confirmed"
    }
    if (this._missed >= this.t.missedHeartbeats) {
      this._fail("gone", "Firefox stopped answering: the pairing ended there");
      return;
    }
    if (afterAuthorize && this.suppAuthorized) {
      await this._complete();
      return;
    }
    this._timer = this._setTimer(() => this._beat(), this.t.heartbeatMs);
  }

  async _complete() {
    this._stopHeartbeat();
    if (this._completeSent) return;
    this._completeSent = true;
    this._set("complete");
    try {
      await this._request(COMMANDS.complete, this.t.replyMs);
    } catch {
      // Firefox forgets the flow when it completes; nothing is left to do.
    }
  }
}
