// The phone, for the authority E2E tests: Mozilla's fxa-pairing-channel (the library
// FxA's /pair/supp page runs inside Fenix) joins the channel over the real relay, sends
// pair:supp:request with a PKCE challenge and an ephemeral P-256 keys_jwk, and reports
// what the authority sends, one JSON object per stdout line.
//
//   node --experimental-websocket supplicant.mjs <origin> <channel_id> <channel_key> <mode>
//        [client_id]
//
// modes: approve-first  send pair:supp:authorize right after pair:auth:metadata
//        approve-last   send it after pair:auth:authorize
//        cancel         close the channel after pair:auth:metadata (the phone's user said no)
//        silent         never approve
// The last line is {"event":"result", ...} with the PKCE verifier and the private JWK, so
// the test can redeem the code and decrypt keys_jwe as the phone's native code would.
import { createRequire } from "node:module";

const [origin, channelId, channelKey, mode, clientId = "a2270f727f45f648"] =
  process.argv.slice(2);
globalThis.window = globalThis; // the UMD bundle looks for `window`
const lib = createRequire(import.meta.url)(process.env.FXA_PAIRING_CHANNEL_DIST);
const { PairingChannel } = lib;

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const b64u = (bytes) => Buffer.from(bytes).toString("base64url");
const fromB64u = (text) => new Uint8Array(Buffer.from(text, "base64url"));

const SCOPE = "profile https://identity.mozilla.com/apps/oldsync " +
  "https://identity.mozilla.com/tokens/session";
const verifier = b64u(crypto.getRandomValues(new Uint8Array(43))); // 58 chars, as AS
const challenge = b64u(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
const state = b64u(crypto.getRandomValues(new Uint8Array(16)));
const pair = await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true,
  ["deriveBits"]);
const priv = await crypto.subtle.exportKey("jwk", pair.privateKey);
const keysJwk = b64u(JSON.stringify({ kty: "EC", crv: "P-256", x: priv.x, y: priv.y }));

const seen = { metadata: null, authorize: null };
let finished = false;
const finish = (how) => {
  if (finished) return;
  finished = true;
  out({ event: "result", how, state, verifier, metadata: seen.metadata,
        authorize: seen.authorize, private_jwk: { kty: "EC", crv: "P-256", x: priv.x,
        y: priv.y, d: priv.d } });
  setTimeout(() => process.exit(0), 50);
};
setTimeout(() => { out({ event: "timeout" }); finish("timeout"); }, 60_000);

let channel;
try {
  channel = await PairingChannel.connect(origin, channelId, fromB64u(channelKey));
} catch (err) {
  out({ event: "error", message: String(err && err.message) });
  finish("connect-error");
}
if (channel) {
  out({ event: "connected" });
  channel.addEventListener("message", async (ev) => {
    const { data: msg, sender } = ev.detail;
    out({ event: "message", message: msg.message, sender });
    if (msg.message === "pair:auth:metadata") {
      seen.metadata = msg.data;
      if (mode === "approve-first") await channel.send({ message: "pair:supp:authorize", data: {} });
      if (mode === "cancel") await channel.close();
    } else if (msg.message === "pair:auth:authorize") {
      seen.authorize = msg.data;
      if (msg.data.state !== state) out({ event: "error", message: "state mismatch" });
      if (mode === "approve-last") await channel.send({ message: "pair:supp:authorize", data: {} });
    }
  });
  channel.addEventListener("close", () => { out({ event: "close" }); finish("close"); });
  channel.addEventListener("error", (ev) => {
    out({ event: "error", message: String(ev.detail && ev.detail.error && ev.detail.error.message) });
    finish("error");
  });
  try {
    // FPC's send waits for the handshake; a wrong key rejects it (after the `error` event).
    await channel.send({
      message: "pair:supp:request",
      data: { access_type: "offline", client_id: clientId, code_challenge: challenge,
              code_challenge_method: "S256", keys_jwk: keysJwk, scope: SCOPE, state },
    });
    out({ event: "requested" });
  } catch (err) {
    out({ event: "error", message: String(err && (err.message || err.description)) });
    finish("error");
  }
}
