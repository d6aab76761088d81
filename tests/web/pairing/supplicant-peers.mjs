// Two peers over a real relay websocket, driven line by line from pytest
// (tests/appliance/pairing/test_mozilla_authority_vs_our_supplicant.py); not a node test.
//
//   node --experimental-websocket supplicant-peers.mjs authority <relay-base-uri>
//     Mozilla's npm fxa-pairing-channel (the library desktop Firefox ships) creates the
//     channel: PairingChannel.create, the TLS server. Prints {"event":"channel",channelId,
//     channelKey} first, then {"event":"message",data,sender} / {"event":"error"} /
//     {"event":"close"}. Commands on stdin: {"cmd":"send","obj":{…}}, {"cmd":"close"}.
//   node --experimental-websocket supplicant-peers.mjs supplicant <supp-url> <user-agent>
//     Foxden's /pair/supp logic (server/web/static/pairing/supplicant.js) joins it.
//     Prints {"event":"state",state,…} on every change and {"event":"deliver",data,detail}
//     where the page would send fxaccounts:oauth_login. Commands: {"cmd":"confirm"},
//     {"cmd":"cancel"}. Exits once the flow ended and its socket closed.
// Every line out is one JSON object. Both exit when stdin closes.
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const [role, ...args] = process.argv.slice(2);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const b64u = (bytes) => Buffer.from(bytes).toString("base64url");
const commands = createInterface({ input: process.stdin });
commands.on("close", () => setTimeout(() => process.exit(0), 50));

async function authority(relayBase) {
  globalThis.window = globalThis; // the UMD bundle looks for `window`
  const lib = createRequire(import.meta.url)(process.env.FXA_PAIRING_CHANNEL_DIST);
  const channel = await lib.PairingChannel.create(relayBase);
  out({ event: "channel", channelId: channel.channelId, channelKey: b64u(channel.channelKey) });
  channel.addEventListener("message", (ev) => out({ event: "message", ...ev.detail }));
  channel.addEventListener("error", (ev) => out({ event: "error", error: String(ev.detail.error) }));
  channel.addEventListener("close", () => out({ event: "close" }));
  commands.on("line", async (line) => {
    const cmd = JSON.parse(line);
    try {
      if (cmd.cmd === "send") await channel.send(cmd.obj);
      else if (cmd.cmd === "close") await channel.close();
      out({ event: "ok", cmd: cmd.cmd });
    } catch (err) {
      out({ event: "failed", cmd: cmd.cmd, error: String(err) });
    }
  });
}

async function supplicant(suppUrl, userAgent) {
  const m = await import("../../../server/web/static/pairing/supplicant.js");
  const link = m.parseSupplicantLink(suppUrl);
  let socketClosed = false;
  class TrackedSocket extends WebSocket {
    constructor(url) {
      super(url);
      this.addEventListener("close", (ev) => {
        socketClosed = true;
        out({ event: "socket-closed", code: ev.code });
        maybeExit();
      });
    }
  }
  const flow = new m.SupplicantFlow({
    ...link,
    relayUrl: m.relayUrlFor(suppUrl, link.channelId),
    WebSocket: TrackedSocket,
    deliver: async (data) => {
      out({ event: "deliver", data,
            detail: m.webChannelDetail("fxaccounts:oauth_login", data, userAgent) });
    },
    onChange: (state, f) => {
      out({ event: "state", state, metadata: f.metadata, sender: f.sender,
            error: f.error && { kind: f.error.kind, message: f.error.message } });
      maybeExit();
    },
  });
  const maybeExit = () => {
    if (flow.ended && socketClosed) setTimeout(() => process.exit(0), 20);
  };
  commands.on("line", (line) => {
    const cmd = JSON.parse(line);
    if (cmd.cmd === "confirm") flow.confirm();
    else if (cmd.cmd === "cancel") flow.cancel();
  });
  flow.start();
}

if (role === "authority") await authority(args[0]);
else if (role === "supplicant") await supplicant(args[0], args[1] || "");
else throw new Error(`unknown role ${role}`);
