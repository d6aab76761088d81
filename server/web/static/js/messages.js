// Plain-language error messages that say what to do. No DOM.

import { ERRNO, FxaError } from "./api.js";
import { BundleError } from "./keybundle.js";
import { JweError } from "./jwe.js";
import { ChannelTimeout, CommandError, NoChannelError } from "./webchannel.js";
import { FlowError } from "./flow.js";

export function waitText(seconds) {
  const s = Math.max(1, Math.ceil(Number(seconds) || 0));
  if (s < 90) {
    return `${s} seconds`;
  }
  const minutes = Math.ceil(s / 60);
  return minutes === 1 ? "1 minute" : `${minutes} minutes`;
}

/** {text, field?} where field names the input the user should fix ("email" | "password"). */
export function describe(err, context = "signin") {
  if (err instanceof FxaError) {
    switch (err.errno) {
      case ERRNO.INCORRECT_PASSWORD:
        return { text: "That password is not right. Check it and try again (passwords are case-sensitive).", field: "password" };
      case ERRNO.ACCOUNT_UNKNOWN:
        return context === "signup"
          ? { text: "No account with that email exists.", field: "email" }
          : { text: "There is no account with that email on this server. Check the address, or ask the person who runs Foxden to add you (foxden user add).", field: "email" };
      case ERRNO.ACCOUNT_EXISTS:
        return { text: "An account with that email already exists. Sign in instead.", field: "email" };
      case ERRNO.THROTTLED:
        return err.retryAfter
          ? { text: `Too many attempts. Wait ${waitText(err.retryAfter)}, then try again.` }
          : { text: "Too many attempts. Wait a few minutes, then try again." };
      case ERRNO.INVALID_TOKEN:
        return { text: "Your sign-in has expired. Sign in to Firefox again from its Sign in button." };
      case ERRNO.INVALID_TIMESTAMP:
        return { text: "This computer's clock is wrong. Set the correct date and time, then try again." };
      case ERRNO.INCORRECT_EMAIL_CASE:
        return { text: "Type your email exactly as it was registered, then try again.", field: "email" };
      case ERRNO.FEATURE_NOT_ENABLED:
        return { text: "This server does not allow that. Ask the person who runs Foxden." };
      case ERRNO.NETWORK:
        return { text: "Cannot reach the Foxden server. Check that it is running and that this computer is on the home network, then try again." };
      default:
        if (err.status >= 500) {
          return { text: "The Foxden server had a problem. Try again in a minute; if it keeps happening, restart Foxden." };
        }
        return { text: `The server refused the request: ${err.message} Try again.` };
    }
  }
  if (err instanceof NoChannelError || err instanceof ChannelTimeout) {
    return { text: "Firefox did not answer this page. Close this tab and start again from Firefox's Sign in button." };
  }
  if (err instanceof FlowError) {
    if (err.kind === "link-refused") {
      return { text: "Firefox did not allow this account here, so sign-in stopped. Nothing was changed. To use this account, sign in again and accept Firefox's question, or use another Firefox profile." };
    }
    if (err.kind === "no-flow") {
      return { text: "Firefox did not start a sign-in. Close this tab and click Sign in in Firefox (menu > Sign in, or Settings > Sync)." };
    }
    return { text: `${err.message} Try again, or ask the person who runs Foxden.` };
  }
  if (err instanceof CommandError) {
    return { text: `Firefox could not finish: ${err.message}. Close this tab and start again from Firefox's Sign in button.` };
  }
  if (err instanceof BundleError || err instanceof JweError) {
    return { text: "The keys from the server could not be checked. Try again; if it keeps happening, ask the person who runs Foxden." };
  }
  return { text: `Something went wrong: ${(err && err.message) || err}. Try again.` };
}
