// The landing page /pair: where a phone's camera app ends up when it scans the QR code
// (<origin>/pair#channel_id=…&channel_key=…), and where desktop users can start pairing.
//
// The fragment is the channel's secret: this page never reads it beyond "is there one",
// never sends it anywhere, and it never reaches the server (it is a fragment).
// In signed-in desktop Firefox (fxaccounts:fxa_status answers with a user and the pairing
// capability, and the UA is not a phone) it offers "Show the pairing code", which sends
// fxaccounts:pair_preferences: Firefox opens about:preferences?action=pair#sync (§6.3).
//
// Stable element ids: body[data-state] instructions | desktop; #pair-server-url,
//   #pair-scanned, #pair-insecure, #desktop-email, #pair-show-code, #pair-show-instructions.

import { $, setText, show } from "../js/ui.js";
import { WebChannel } from "../js/webchannel.js";
import { isMobile } from "./describe.js";

const STATUS_TIMEOUT_MS = 1500;

async function desktopStatus() {
  if (isMobile(navigator.userAgent)) return null;
  try {
    const channel = new WebChannel(window);
    const status = await channel.request("fxaccounts:fxa_status", { service: "sync" },
                                         { timeoutMs: STATUS_TIMEOUT_MS });
    const user = status && status.signedInUser;
    const canPair = status && status.capabilities && status.capabilities.pairing;
    return user && user.email && canPair ? { channel, email: user.email } : null;
  } catch {
    return null; // not Firefox, not bound to this server, or not signed in
  }
}

async function main() {
  $("pair-scanned").hidden = !/channel_id=/.test(location.hash);
  $("pair-insecure").hidden = document.body.dataset.secure !== "no";
  const desktop = await desktopStatus();
  if (!desktop) return;
  setText("desktop-email", desktop.email);
  $("pair-show-code").addEventListener("click", () => {
    desktop.channel.send("fxaccounts:pair_preferences", {});
  });
  $("pair-show-instructions").addEventListener("click", () => show("instructions"));
  show("desktop");
}

main();
