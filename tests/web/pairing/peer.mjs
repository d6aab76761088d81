// A TLS-PSK peer driven over stdin/stdout by the Python interop tests (not a node test).
//
//   node peer.mjs <ours|fpc> <client|server> <psk-hex> <psk-id-hex> [<random-hex>,...]
//
// "ours" = server/web/static/pairing/tlspsk.js; "fpc" = Mozilla's fxa-pairing-channel
// connection classes from the npm bundle at $FXA_PAIRING_CHANNEL_DIST, driven without a
// WebSocket through their send callback. Optional randoms are handed out in order (both
// libraries draw crypto.getRandomValues-sized chunks: client random, session id / server random).
//
// Commands, one a line: "recv <hex>", "send <hex>", "close". After start-up and after each
// command the peer prints zero or more of "rec <hex>" (a record for the other side),
// "event handshake", "event data <hex>", "event closed", "error <kind> <description>",
// then "done".
import { createRequire } from "node:module";
import { createInterface } from "node:readline";

const [impl, role, pskHex, pskIdHex, randomsArg = ""] = process.argv.slice(2);
const hex = (s) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const toHex = (b) => Buffer.from(b).toString("hex");
const randoms = randomsArg ? randomsArg.split(",").map(hex) : [];
const out = [];
const emit = (line) => out.push(line);
const flush = () => { out.push("done"); process.stdout.write(out.join("\n") + "\n"); out.length = 0; };

function ours() {
  return import("../../../server/web/static/pairing/tlspsk.js").then(async (m) => {
    const random = randoms.length ? (n) => randoms.shift().slice(0, n) : undefined;
    const Cls = role === "client" ? m.ClientConnection : m.ServerConnection;
    const conn = await Cls.create(hex(pskHex), hex(pskIdHex), { random });
    const report = (events) => {
      for (const ev of events) {
        if (ev.type === "handshakeComplete") emit("event handshake");
        else if (ev.type === "data") emit(`event data ${toHex(ev.data)}`);
        else emit("event closed");
      }
    };
    const records = () => conn.dataToSend().forEach((r) => emit(`rec ${toHex(r)}`));
    const onError = (err) => {
      records(); // the alert for the peer, if any
      emit(`error ${err.constructor.name} ${err.description ?? "-"}`);
    };
    records();
    return {
      recv: async (b) => { report(await conn.receiveRecord(b)); records(); },
      send: async (b) => (await conn.sendData(b)).forEach((r) => emit(`rec ${toHex(r)}`)),
      close: async () => (await conn.close()).forEach((r) => emit(`rec ${toHex(r)}`)),
      onError,
    };
  });
}

async function fpc() {
  globalThis.window = globalThis; // the UMD bundle looks for `window`
  const lib = createRequire(import.meta.url)(process.env.FXA_PAIRING_CHANNEL_DIST);
  const { ClientConnection, ServerConnection } = lib._internals;
  if (randoms.length) {
    // FPC draws all randomness through crypto.getRandomValues (src/crypto.js getRandomBytes).
    const real = crypto.getRandomValues.bind(crypto);
    crypto.getRandomValues = (arr) => (randoms.length ? (arr.set(randoms.shift()), arr) : real(arr));
  }
  const Cls = role === "client" ? ClientConnection : ServerConnection;
  const conn = await Cls.create(hex(pskHex), hex(pskIdHex), (data) => emit(`rec ${toHex(data)}`));
  let connected = false, reported = false;
  conn.connected.then(() => { connected = true; }, () => {});
  const settle = async () => {
    await new Promise((r) => setImmediate(r));
    if (connected && !reported) { reported = true; emit("event handshake"); }
  };
  return {
    recv: async (b) => {
      const data = await conn.recv(b);
      await settle();
      if (data !== null) emit(`event data ${toHex(data)}`);
    },
    send: (b) => conn.send(b),
    close: () => conn.close(),
    onError: (err) => {
      if (err instanceof lib.TLSCloseNotify) emit("event closed");
      else emit(`error ${err.constructor.name} ${err.description ?? "-"}`);
    },
  };
}

const peer = await (impl === "fpc" ? fpc() : ours());
flush();
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const [op, arg = ""] = line.trim().split(" ");
  try {
    if (op === "recv") await peer.recv(hex(arg));
    else if (op === "send") await peer.send(hex(arg));
    else if (op === "close") await peer.close();
    else throw new Error(`unknown command ${op}`);
  } catch (err) {
    peer.onError(err);
  }
  flush();
}
