// The supplicant page /pair/supp (pairing.md §7): the phone's Firefox opens it with its own
// OAuth request in the query and the scanned #channel_id=…&channel_key=… in the fragment.
// The fragment never reaches the server; everything happens in this one document (a
// navigation would kill the socket and the TLS state, §7.5).
//
// Finishing (§4.3): WebChannel command fxaccounts:oauth_login with
//   {action: "pairing", code, state, redirect: "urn:ietf:wg:oauth:2.0:oob:oauth-redirect-webchannel"}
// on channel "account_updates". The event detail is
//   * an OBJECT when the User-Agent contains "FxiOS" (Firefox for iOS: its user script
//     forwards the detail as is and native code wants a dictionary; messageId all digits);
//   * a JSON STRING otherwise (Firefox for Android's injected extension JSON.parses it, and
//     desktop Firefox drops non-strings).
// No reply is awaited: the phone's native code takes over (complete_oauth_flow).
//
// Stable element ids (tests/e2e/test_pairing_phone.py uses these; keep them):
//   body[data-state]  loading | confirm | waiting | done | failed | insecure
//   body[data-error]  the error kind once failed (see supplicant.js), else absent
//   #loading-step     progress text               #loading-cancel   cancel while connecting
//   #confirm-email    account the computer offers #confirm-name     its display name, if any
//   #confirm-device   the computer's device name  #supp-confirm     "Confirm"
//   #supp-cancel      "Cancel" on the confirm screen
//   #waiting-device   the computer to confirm on  #waiting-cancel   cancel while waiting
//   #failed-title, #failed-message, #failed-hint  why it stopped and what to do

import { $, setText, show } from "../js/ui.js";
import { describeDevice } from "./describe.js";
import { SupplicantFlow, parseSupplicantLink, relayUrlFor, sendOAuthLogin } from "./supplicant.js";

const START_AGAIN = "On the computer, close the pairing window and open it again " +
  "(Settings › Sync › Connect another device), then scan the new code with Firefox on this phone.";

const FAILURES = {
  link: ["This pairing link is not complete",
    "Scan the code with Firefox itself: in Firefox on this phone choose Sign in, then “Ready to scan” or “Scan pairing code”."],
  connect: ["This pairing code is no longer valid",
    `The computer stopped showing it, or it was already used. ${START_AGAIN}`],
  "relay-closed": ["The connection was lost", START_AGAIN],
  "wrong-key": ["This code does not match the computer",
    `The code was changed or scanned from another screen. ${START_AGAIN}`],
  protocol: ["Pairing failed", START_AGAIN],
  "bad-authorization": ["The computer sent an unexpected answer", START_AGAIN],
  declined: ["Pairing was cancelled on the computer",
    `Nothing was changed on this phone. To try again: ${START_AGAIN}`],
  timeout: ["Pairing took too long", START_AGAIN],
  cancelled: ["You cancelled the pairing", "Nothing was changed on this phone."],
  deliver: ["Firefox did not take the sign-in",
    "Open this page from Firefox's own “Scan pairing code” button, not from another app."],
};

const STEPS = {
  connecting: "Opening a secure connection…",
  handshake: "Checking the pairing code with your computer…",
  "waiting-metadata": "Waiting for your computer…",
};

function fail(kind, detail) {
  const [title, hint] = FAILURES[kind] || FAILURES.protocol;
  document.body.dataset.error = kind;
  setText("failed-title", title);
  setText("failed-message", detail || title);
  setText("failed-hint", hint);
  show("failed");
}

function render(state, flow) {
  if (STEPS[state]) {
    setText("loading-step", STEPS[state]);
    return;
  }
  const device = (flow.metadata && flow.metadata.deviceName) ||
    describeDevice(flow.sender && flow.sender.ua);
  if (state === "confirm") {
    setText("confirm-email", flow.metadata.email || "your account");
    const name = flow.metadata.displayName || "";
    setText("confirm-name", name);
    $("confirm-name-wrap").hidden = !name;
    setText("confirm-device", device);
    show("confirm");
  } else if (state === "waiting-authority") {
    setText("waiting-device", device);
    show("waiting");
  } else if (state === "done") {
    show("done");
  } else if (state === "failed") {
    const err = flow.error;
    fail(err.kind, `${err.message[0].toUpperCase()}${err.message.slice(1)}.`);
  }
}

function main() {
  if (!globalThis.crypto || !globalThis.crypto.subtle) {
    show("insecure");
    return;
  }
  let link;
  try {
    link = parseSupplicantLink(location.href);
  } catch (err) {
    fail("link", err.message ? `${err.message[0].toUpperCase()}${err.message.slice(1)}.` : "");
    return;
  }
  const flow = new SupplicantFlow({
    ...link,
    relayUrl: relayUrlFor(location.href, link.channelId),
    WebSocket: globalThis.WebSocket,
    deliver: (data) => sendOAuthLogin(window, data, { userAgent: navigator.userAgent }),
    onChange: render,
  });
  $("supp-confirm").addEventListener("click", () => {
    $("supp-confirm").disabled = true;
    flow.confirm();
  });
  for (const id of ["supp-cancel", "waiting-cancel", "loading-cancel"]) {
    $(id).addEventListener("click", () => flow.cancel());
  }
  // Leaving the page ends the channel; the computer then times out on its own.
  window.addEventListener("pagehide", () => flow.dispose());
  flow.start();
}

main();
