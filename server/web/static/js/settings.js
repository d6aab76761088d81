// Account settings (GET /settings, /settings/clients). Firefox opens it with entrypoint,
// context, uid and email; the session comes from fxa_status signedInUser.sessionToken.
//
// Stable element ids (the e2e driver uses these; keep them):
//   body[data-state]   loading | insecure | no-channel | signed-out | expired | home | devices |
//                      services | password | signout | delete | message
//   #home-email
//   menu:     #menu-devices  #menu-services  #menu-password  #menu-signout  #menu-delete
//   devices:  #devices-list (li[data-device-id]), #device-disconnect-<deviceId> per other
//             device, #devices-refresh, #devices-back, #devices-status, #devices-error
//   services: #services-list (li[data-client-id]), #service-disconnect-<n> per entry that is
//             not this Firefox, #services-refresh, #services-back, #services-error
//   password: #old-password #new-password #new-password-confirm #change-password-submit
//             #password-error #password-back
//   sign out: #signout-submit #signout-back #signout-error
//   delete:   #delete-password #delete-confirm (checkbox) #delete-submit #delete-error #delete-back
//   result:   #message-title #message-text #message-home

import { Api, ERRNO, FxaError } from "./api.js";
import { connectToFirefox, hasWebCrypto, showInsecure } from "./connect.js";
import { changePassword, deleteAccount, signOut } from "./flow.js";
import { describe } from "./messages.js";
import { $, el, setBusy, setError, setText, show } from "./ui.js";

const MIN_PASSWORD_LENGTH = 8;

let api;
let channel;
let account;

function when(ms) {
  if (!ms) {
    return "";
  }
  const d = new Date(Number(ms));
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleString();
}

function message(title, text, homeButton = true) {
  setText("message-title", title);
  setText("message-text", text);
  $("message-home").hidden = !homeButton;
  show("message");
}

function isExpired(err) {
  return err instanceof FxaError && err.status === 401 && err.errno === ERRNO.INVALID_TOKEN;
}

function fail(errorId, err, context = "settings") {
  if (isExpired(err)) {
    show("expired");
    return;
  }
  setError(errorId, describe(err, context).text);
}

// --- devices ------------------------------------------------------------------------------

async function loadDevices() {
  setError("devices-error", "");
  setText("devices-status", "Loading…");
  const list = $("devices-list");
  let devices;
  try {
    devices = await api.devices(account.sessionToken);
  } catch (err) {
    setText("devices-status", "");
    fail("devices-error", err);
    return;
  }
  list.replaceChildren();
  setText("devices-status", devices.length ? "" : "No devices yet.");
  for (const device of devices) {
    const item = el("li", { dataset: { deviceId: device.id } },
      el("span", { class: "name" }, device.name || "Unnamed device"));
    const details = [device.type || "device"];
    if (device.isCurrentDevice) {
      details.push("this Firefox");
    } else if (device.lastAccessTime) {
      details.push(`last used ${when(device.lastAccessTime)}`);
    }
    item.append(el("span", { class: "muted" }, details.join(" · ")));
    if (!device.isCurrentDevice) {
      const button = el("button", { type: "button", class: "secondary", id: `device-disconnect-${device.id}` }, "Disconnect");
      button.addEventListener("click", () => disconnectDevice(device, button));
      item.append(el("br"), button);
    }
    list.append(item);
  }
}

async function disconnectDevice(device, button) {
  setBusy(button, true, "Disconnecting…");
  try {
    try {
      await api.deviceDestroy(account.sessionToken, device.id);
    } catch (err) {
      if (!(err instanceof FxaError) || (err.status !== 404 && err.errno !== ERRNO.ENDPOINT_NOT_SUPPORTED)) {
        throw err;
      }
      await api.attachedClientDestroy(account.sessionToken, { deviceId: device.id });
    }
  } catch (err) {
    setBusy(button, false);
    fail("devices-error", err);
    return;
  }
  setText("devices-status", `Disconnected “${device.name || "device"}”.`);
  await loadDevices();
}

// --- connected services ----------------------------------------------------------------------

async function loadServices() {
  setError("services-error", "");
  setText("services-status", "Loading…");
  const list = $("services-list");
  let clients;
  try {
    clients = await api.attachedClients(account.sessionToken);
  } catch (err) {
    setText("services-status", "");
    fail("services-error", err);
    return;
  }
  list.replaceChildren();
  setText("services-status", clients.length ? "" : "Nothing is connected.");
  clients.forEach((client, index) => {
    const item = el("li", { dataset: { clientId: client.clientId || "" } },
      el("span", { class: "name" }, client.name || client.clientId || "Firefox sign-in"));
    const details = [];
    if (client.isCurrentSession) {
      details.push("this Firefox");
    } else if (client.lastAccessTime) {
      details.push(`last used ${when(client.lastAccessTime)}`);
    }
    if (details.length) {
      item.append(el("span", { class: "muted" }, details.join(" · ")));
    }
    if (!client.isCurrentSession) {
      const button = el("button", { type: "button", class: "secondary", id: `service-disconnect-${index}` }, "Disconnect");
      button.addEventListener("click", async () => {
        setBusy(button, true, "Disconnecting…");
        try {
          await api.attachedClientDestroy(account.sessionToken, client);
        } catch (err) {
          setBusy(button, false);
          fail("services-error", err);
          return;
        }
        await loadServices();
      });
      item.append(el("br"), button);
    }
    list.append(item);
  });
}

// --- forms --------------------------------------------------------------------------------------

function wirePassword() {
  $("password-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const oldPassword = $("old-password").value;
    const newPassword = $("new-password").value;
    if (!oldPassword) {
      setError("password-error", "Type your current password.");
      $("old-password").focus();
      return;
    }
    if (newPassword.length < MIN_PASSWORD_LENGTH) {
      setError("password-error", `Choose a new password of at least ${MIN_PASSWORD_LENGTH} characters.`);
      $("new-password").focus();
      return;
    }
    if (newPassword !== $("new-password-confirm").value) {
      setError("password-error", "The two new passwords are not the same. Type them again.");
      $("new-password-confirm").value = "";
      $("new-password-confirm").focus();
      return;
    }
    if (newPassword === oldPassword) {
      setError("password-error", "The new password is the same as the current one. Choose a different one.");
      $("new-password").focus();
      return;
    }
    setError("password-error", "");
    const button = $("change-password-submit");
    setBusy(button, true, "Changing password…");
    try {
      account = await changePassword({ api, channel, account, oldPassword, newPassword });
    } catch (err) {
      setBusy(button, false);
      fail("password-error", err);
      return;
    }
    setBusy(button, false);
    for (const id of ["old-password", "new-password", "new-password-confirm"]) {
      $(id).value = "";
    }
    message("Password changed", "Your new password works now. This Firefox stays signed in; other computers will ask you to sign in again.");
  });
}

function wireSignOut() {
  $("signout-submit").addEventListener("click", async () => {
    const button = $("signout-submit");
    setBusy(button, true, "Signing out…");
    try {
      await signOut({ api, channel, account });
    } catch (err) {
      setBusy(button, false);
      fail("signout-error", err);
      return;
    }
    message("Signed out", "This Firefox is no longer signed in to Foxden. You can close this tab.", false);
  });
}

function wireDelete() {
  $("delete-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const password = $("delete-password").value;
    if (!password) {
      setError("delete-error", "Type your password to confirm.");
      $("delete-password").focus();
      return;
    }
    if (!$("delete-confirm").checked) {
      setError("delete-error", "Tick the box to confirm that you want to delete the account.");
      $("delete-confirm").focus();
      return;
    }
    setError("delete-error", "");
    const button = $("delete-submit");
    setBusy(button, true, "Deleting…");
    try {
      await deleteAccount({ api, channel, account, password });
    } catch (err) {
      setBusy(button, false);
      fail("delete-error", err);
      return;
    }
    $("delete-password").value = "";
    message("Account deleted", "The account and its synced data are gone from the server. Firefox is signed out. You can close this tab.", false);
  });
}

function wireNavigation() {
  const go = (name, load) => () => {
    show(name);
    if (load) {
      load();
    }
  };
  $("menu-devices").addEventListener("click", go("devices", loadDevices));
  $("menu-services").addEventListener("click", go("services", loadServices));
  $("menu-password").addEventListener("click", go("password"));
  $("menu-signout").addEventListener("click", go("signout"));
  $("menu-delete").addEventListener("click", go("delete"));
  $("devices-refresh").addEventListener("click", loadDevices);
  $("services-refresh").addEventListener("click", loadServices);
  for (const id of ["devices-back", "services-back", "password-back", "signout-back", "delete-back", "message-home"]) {
    $(id).addEventListener("click", go("home"));
  }
}

async function main() {
  if (!hasWebCrypto()) {
    showInsecure();
    return;
  }
  api = new Api({ origin: location.origin });
  const connected = await connectToFirefox();
  channel = connected.channel;
  const user = connected.status.signedInUser;
  if (!user) {
    show("signed-out");
    return;
  }
  if (!user.sessionToken) {
    show("expired");
    return;
  }
  account = { email: user.email, uid: user.uid, sessionToken: user.sessionToken };
  try {
    await api.sessionStatus(account.sessionToken);
  } catch (err) {
    if (isExpired(err)) {
      show("expired");
      return;
    }
    setError("home-error", describe(err).text);
  }
  setText("home-email", account.email);
  $("password-username").value = account.email;
  wireNavigation();
  wirePassword();
  wireSignOut();
  wireDelete();
  if (location.pathname.replace(/\/$/, "") === "/settings/clients") {
    show("devices");
    await loadDevices();
  } else {
    show("home");
  }
}

main().catch((err) => {
  message("Something went wrong", describe(err).text, false);
});
