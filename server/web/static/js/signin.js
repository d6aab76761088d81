// Sign-in page (GET /): Firefox's "Sign in to Sync", context=oauth_webchannel_v1.
//
// Stable element ids (the e2e driver uses these; keep them):
//   body[data-state]     current screen: loading | insecure | no-channel | email | password |
//                        working | done | stopped
//   #email               email input              #email-continue   continue button
//   #email-error         email step error text
//   #password            password input           #password-submit  "Sign in" button
//   #password-error      password step error text #email-change     back to the email step
//   #password-email      the email being signed in
//   #cwts                "Choose what to sync" <details>; #engine-<name> one checkbox per engine
//   #working-step        progress text while talking to the server and Firefox
//   #done-heading        "You're signed in"       #done-sync-settings  opens Firefox's Sync settings
//   #stopped-message     why sign-in stopped      #stopped-retry    start again
//   #no-channel-retry    retry after "open this page from Firefox"
//   #signed-in-note / #signed-in-email   Firefox is already signed in as …
//   #signup-link         shown only when the server allows sign-up

import { Api } from "./api.js";
import { chosenEngines, connectToFirefox, hasWebCrypto, oauthParams, renderEngines, showInsecure } from "./connect.js";
import { FlowError, completeSignIn, passwordLogin } from "./flow.js";
import { describe } from "./messages.js";
import { $, setBusy, setError, setText, show } from "./ui.js";

const STEP_TEXT = {
  keys: "Checking your password and fetching your keys…",
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
  const user = status.signedInUser;
  if (user && user.email) {
    setText("signed-in-email", user.email);
    $("signed-in-note").hidden = false;
  }
  if (document.body.dataset.signup === "open") {
    $("signup-wrap").hidden = false;
  }
  $("email").value = query.get("email") || (user && user.email) || "";

  let email = "";

  $("email-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("email").value.trim();
    if (!/^[^\s@]+@[^\s@]+$/.test(value)) {
      setError("email-error", "Type the email address of your Foxden account, like name@example.org.");
      $("email").focus();
      return;
    }
    setError("email-error", "");
    email = value;
    setText("password-email", email);
    setError("password-error", "");
    show("password");
  });

  $("email-change").addEventListener("click", () => {
    show("email");
  });

  $("password-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const password = $("password").value;
    if (!password) {
      setError("password-error", "Type your password.");
      $("password").focus();
      return;
    }
    setError("password-error", "");
    const button = $("password-submit");
    setBusy(button, true, "Signing in…");
    let account;
    try {
      account = await passwordLogin(api, email, password);
    } catch (err) {
      setBusy(button, false);
      const { text, field } = describe(err, "signin");
      if (field === "email") {
        setError("email-error", text);
        show("email");
      } else {
        setError("password-error", text);
        $("password").focus();
        $("password").select();
      }
      return;
    }
    $("password").value = "";
    setBusy(button, false);
    setText("working-step", STEP_TEXT.keys);
    show("working");
    try {
      await completeSignIn({
        api, channel, params, account,
        engines: chosenEngines(status),
        action: "signin",
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

  show("email");
}

function stop(err) {
  setText("stopped-message", describe(err, "signin").text);
  if (err instanceof FlowError && err.kind === "link-refused") {
    setText("stopped-title", "Sign-in stopped");
  }
  show("stopped");
}

$("stopped-retry").addEventListener("click", () => location.reload());

main().catch(stop);
