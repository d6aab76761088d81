// Page start-up shared by the sign-in and sign-up pages: secure-context check, fxa_status
// with the "open this page from Firefox" fallback, the OAuth parameters, and the
// choose-what-to-sync list.

import { $, el, fillOrigin, keepQuery, show } from "./ui.js";
import { WebChannel } from "./webchannel.js";
import { fxaStatus, oauthParamsFromQuery, resolveOAuthParams } from "./flow.js";

const ENGINE_LABELS = {
  bookmarks: "Bookmarks",
  history: "History",
  passwords: "Passwords",
  tabs: "Open tabs",
  addons: "Add-ons",
  prefs: "Settings",
  addresses: "Addresses",
  creditcards: "Payment methods",
};

export function hasWebCrypto() {
  return Boolean(globalThis.isSecureContext && globalThis.crypto && globalThis.crypto.subtle);
}

/**
 * Wait for Firefox: fxa_status within ~1.5 s. Without an answer (or with "No Such Channel")
 * show #screen-no-channel, but keep listening: a late reply, or the Try again button,
 * continues. Resolves with {channel, status}.
 */
export function connectToFirefox() {
  fillOrigin();
  keepQuery();
  return new Promise((resolve) => {
    const channel = new WebChannel(window);
    let done = false;
    const attempt = () => {
      fxaStatus(channel, 0).then((status) => {
        if (!done) {
          done = true;
          resolve({ channel, status: status || {} });
        }
      }, () => {
        show("no-channel");
      });
    };
    const timer = setTimeout(() => {
      if (!done) {
        show("no-channel");
      }
    }, 1500);
    channel.onNoChannel = () => {
      clearTimeout(timer);
      show("no-channel");
    };
    const retry = $("no-channel-retry");
    if (retry) {
      retry.addEventListener("click", () => {
        channel.noChannel = false;
        show("loading");
        attempt();
        setTimeout(() => {
          if (!done) {
            show("no-channel");
          }
        }, 1500);
      });
    }
    attempt();
  });
}

/** The OAuth parameters for this sign-in (URL, or a fresh flow from Firefox). */
export async function oauthParams(channel) {
  const fromUrl = oauthParamsFromQuery(location.search);
  const { params, source } = await resolveOAuthParams(channel, fromUrl);
  if (source === "browser") {
    // Keep the fresh parameters in the URL too, so a reload uses them (§2.1).
    const q = new URLSearchParams(location.search);
    q.set("context", "oauth_webchannel_v1");
    q.set("service", "sync");
    for (const [key, value] of Object.entries(params)) {
      q.set(key, value);
    }
    history.replaceState(null, "", `${location.pathname}?${q}`);
    keepQuery();
  }
  return params;
}

/** Fill <details id="cwts"> with one checked box per engine Firefox offers. */
export function renderEngines(status) {
  const engines = (status && status.capabilities && status.capabilities.engines) || [];
  const box = $("engines");
  const details = $("cwts");
  if (!box || !details || engines.length === 0) {
    return;
  }
  for (const old of box.querySelectorAll("label")) {
    old.remove();
  }
  for (const name of engines) {
    const input = el("input", { type: "checkbox", id: `engine-${name}`, name: "engine", value: name, checked: true });
    box.append(el("label", { class: "check", for: `engine-${name}` }, input, ENGINE_LABELS[name] || name));
  }
  details.hidden = false;
}

/** {offered, declined} from the boxes, or null when Firefox offered no list. */
export function chosenEngines(status) {
  const engines = (status && status.capabilities && status.capabilities.engines) || [];
  if (engines.length === 0) {
    return null;
  }
  const declined = engines.filter((name) => {
    const box = $(`engine-${name}`);
    return box && !box.checked;
  });
  return { offered: engines, declined };
}

export function showInsecure() {
  fillOrigin();
  show("insecure");
}
