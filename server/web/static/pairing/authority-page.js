// The desktop-authority page /oauth (pairing.md §6): Firefox loads it into its "Connect
// another device" dialog once a phone joined the channel. Protocol and states: authority.js.
//
// Stable element ids (tests/e2e/test_pairing_phone.py uses these; keep them):
//   body[data-state]   loading | allow | authorizing | wait-for-supp | complete | declined |
//                      failed | not-pairing
//   body[data-error]   the failure kind (authority.js), else absent
//   #allow-email       account being shared       #allow-device   "Firefox on Android" …
//   #allow-app         app asking (from client_id) #allow-place   location / IP
//   #allow-supp-ready  shown once the phone confirmed
//   #pair-confirm      "Confirm"                   #pair-decline   "Cancel"
//   #wait-decline      "Cancel" while waiting for the phone
//   #failed-title, #failed-message

import { $, keepQuery, setText, show } from "../js/ui.js";
import { WebChannel } from "../js/webchannel.js";
import { AuthorityFlow, parseAuthorityUrl } from "./authority.js";
import { clientName, describeDevice, describePlace } from "./describe.js";

const FAILED = {
  "no-channel": "Firefox did not answer this page. Open the pairing window again from " +
    "Firefox's Sync settings (Connect another device).",
  gone: "The pairing ended in Firefox (it timed out or was closed).",
};

function render(info) {
  return (state, flow) => {
    if (state === "allow" || state === "authorizing" || state === "wait-for-supp") {
      if (state === "allow") {
        const meta = flow.metadata || {};
        setText("allow-email", info.email || "your account");
        setText("allow-device", describeDevice(meta.ua));
        setText("allow-app", clientName(info.clientId));
        setText("allow-place", describePlace(meta));
        $("allow-supp-ready").hidden = !flow.suppAuthorized;
      }
      if (document.body.dataset.state !== state) show(state);
    } else if (state === "failed") {
      document.body.dataset.error = flow.error.kind;
      setText("failed-message", FAILED[flow.error.kind] || `Firefox reported: ${flow.error.message}`);
      show("failed");
    } else if (state !== "loading" && state !== "idle") {
      show(state);
    }
  };
}

function main() {
  const info = parseAuthorityUrl(location.href);
  if (info === null) {
    keepQuery();
    show("not-pairing");
    return;
  }
  const flow = new AuthorityFlow({
    channel: new WebChannel(window),
    channelId: info.channelId,
    onChange: render(info),
  });
  $("pair-confirm").addEventListener("click", () => {
    $("pair-confirm").disabled = true;
    flow.confirm();
  });
  $("pair-decline").addEventListener("click", () => flow.decline());
  $("wait-decline").addEventListener("click", () => flow.decline());
  flow.start();
}

main();
