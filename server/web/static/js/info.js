// Simple information pages (connect_another_device, avatar, set_password, closed sign-up).
//
// Stable element ids: body[data-page] names the page; buttons carry data-command and are
//   #open-sync-settings (sends fxaccounts:sync_preferences) where present.
// Links marked data-keep-query keep the page's query string.

import { WebChannel } from "./webchannel.js";
import { fillOrigin, keepQuery } from "./ui.js";

fillOrigin();
keepQuery();

const buttons = document.querySelectorAll("button[data-command]");
if (buttons.length > 0) {
  const channel = new WebChannel(window);
  for (const button of buttons) {
    button.addEventListener("click", () => {
      channel.send(button.dataset.command, { entryPoint: "foxden" });
    });
  }
}
