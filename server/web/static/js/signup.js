// Sign-up page (GET /signup while settings.signup_open): create the account, then continue
// exactly like sign-in (keys, keys_jwe, authorization, can_link_account, login, oauth_login).
//
// Stable element ids (the e2e driver uses these; keep them):
//   body[data-state]     loading | insecure | no-channel | form | working | done | stopped
//   #email               email input
//   #password            new password             #password-confirm  the same again
//   #signup-submit       "Create account" button  #signup-error      error text
//   #cwts / #engine-<name>   choose what to sync
//   #working-step, #done-heading, #done-sync-settings, #stopped-message, #stopped-retry,
//   #no-channel-retry, #signin-link (back to sign-in, keeps the query string)

import { Api } from "./api.js";
import { chosenEngines, connectToFirefox, hasWebCrypto, oauthParams, renderEngines, showInsecure } from "./connect.js";
import { completeSignIn, createAccount } from "./flow.js";
import { describe } from "./messages.js";
import { $, setBusy, setError, setText, show } from "./ui.js";

export const MIN_PASSWORD_LENGTH = 8;

const STEP_TEXT = {
  keys: "Creating your keys…",
  authorize: "Preparing your Sync key for Firefox…",
  firefox: "Handing over to Firefox… (if Firefox asks a question, answer it)",
};

async function main() {
  if (!hasWebCrypto()) {
    showInsecure();
    return;
  }
  const api = new Api({ origin: location.origin });
  const { channel, status } = await connectToFirefox();
  let params;
  try {
    params = await oauthParams(channel);
  } catch (err) {
    stop(err);
    return;
  }
  renderEngines(status);
  const query = new URLSearchParams(location.search);
  $("email").value = query.get("email") || "";

  $("signup-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const email = $("email").value.trim();
    const password = $("password").value;
    const confirm = $("password-confirm").value;
    if (!/^[^\s@]+@[^\s@]+$/.test(email)) {
      setError("signup-error", "Type a valid email address, like name@example.org.");
      $("email").focus();
      return;
    }
    if (password.length < MIN_PASSWORD_LENGTH) {
      setError("signup-error", `Choose a password of at least ${MIN_PASSWORD_LENGTH} characters.`);
      $("password").focus();
      return;
    }
    if (password !== confirm) {
      setError("signup-error", "The two passwords are not the same. Type them again.");
      $("password-confirm").value = "";
      $("password-confirm").focus();
      return;
    }
    setError("signup-error", "");
    const button = $("signup-submit");
    setBusy(button, true, "Creating account…");
    let account;
    try {
      account = await createAccount(api, email, password);
    } catch (err) {
      setBusy(button, false);
      setError("signup-error", describe(err, "signup").text);
      return;
    }
    $("password").value = "";
    $("password-confirm").value = "";
    setBusy(button, false);
    setText("working-step", STEP_TEXT.keys);
    show("working");
    try {
      await completeSignIn({
        api, channel, params, account,
        engines: chosenEngines(status),
        action: "signup",
        onStep: (step) => STEP_TEXT[step] && setText("working-step", STEP_TEXT[step]),
      });
    } catch (err) {
      stop(err);
      return;
    }
    show("done");
  });

  $("done-sync-settings").addEventListener("click", () => {
    channel.send("fxaccounts:sync_preferences", { entryPoint: "foxden" });
  });
  show("form");
}

function stop(err) {
  setText("stopped-message", describe(err, "signup").text);
  show("stopped");
}

$("stopped-retry").addEventListener("click", () => location.reload());

main().catch(stop);
