// Firefox's WebChannel "account_updates" (firefox-signin.md §2.2, firefox-testing.md §5.3).
//
// Page -> browser: window.dispatchEvent(new CustomEvent("WebChannelMessageToChrome",
//   {detail: JSON.stringify({id: "account_updates", message: {command, data, messageId}})}))
//   detail MUST be a string; Firefox drops objects.
// Browser -> page: "WebChannelMessageToContent" on window, detail = {id, message: {command,
//   messageId, data}} (an object; a string is accepted too).
// Wrong origin / channel not bound yet: {id, message: {errno: 2, error: "No Such Channel"}},
//   without a messageId. Every pending request then fails with NoChannelError.
// A handler error comes back as data.error = {message, stack} -> CommandError.
//
// No DOM access beyond the event target passed in (window in the page, an EventTarget in
// node tests).

export const CHANNEL_ID = "account_updates";

export class ChannelError extends Error {}
export class NoChannelError extends ChannelError {}
export class ChannelTimeout extends ChannelError {}
export class CommandError extends ChannelError {
  constructor(command, error) {
    super(`${command}: ${(error && error.message) || error || "error"}`);
    this.command = command;
    this.detail = error;
  }
}

let counter = 0;

export class WebChannel {
  constructor(target = globalThis.window) {
    this.target = target;
    this.pending = new Map(); // messageId -> {command, resolve, reject, timer}
    this.noChannel = false;
    this.log = []; // [{dir: "out"|"in", command, data}] - read by tests
    this.onNoChannel = null;
    target.addEventListener("WebChannelMessageToContent", (event) => this._receive(event));
  }

  /** Fire and forget. */
  send(command, data = {}) {
    const messageId = `${Date.now()}-${++counter}`;
    this._dispatch(command, data, messageId);
    return messageId;
  }

  _dispatch(command, data, messageId) {
    this.log.push({ dir: "out", command, data });
    const detail = JSON.stringify({ id: CHANNEL_ID, message: { command, data, messageId } });
    this.target.dispatchEvent(new CustomEvent("WebChannelMessageToChrome", { detail }));
  }

  /** Send and wait for the reply's data. timeoutMs 0 = wait forever. */
  request(command, data = {}, { timeoutMs = 0 } = {}) {
    if (this.noChannel) {
      return Promise.reject(new NoChannelError("No Such Channel"));
    }
    return new Promise((resolve, reject) => {
      const entry = { command, resolve, reject, timer: null };
      // Register before sending: a reply can arrive synchronously.
      const messageId = `${Date.now()}-${++counter}`;
      this.pending.set(messageId, entry);
      if (timeoutMs > 0) {
        entry.timer = setTimeout(() => {
          this.pending.delete(messageId);
          reject(new ChannelTimeout(`${command}: no reply from Firefox`));
        }, timeoutMs);
      }
      this._dispatch(command, data, messageId);
    });
  }

  _receive(event) {
    let detail = event.detail;
    if (typeof detail === "string") {
      try {
        detail = JSON.parse(detail);
      } catch {
        return;
      }
    }
    if (!detail || detail.id !== CHANNEL_ID || !detail.message) {
      return;
    }
    const message = detail.message;
    if (message.errno === 2 || message.error === "No Such Channel") {
      this.noChannel = true;
      this.log.push({ dir: "in", command: null, data: { errno: message.errno, error: message.error } });
      for (const [id, entry] of this.pending) {
        clearTimeout(entry.timer);
        this.pending.delete(id);
        entry.reject(new NoChannelError("No Such Channel"));
      }
      if (this.onNoChannel) {
        this.onNoChannel();
      }
      return;
    }
    this.log.push({ dir: "in", command: message.command, data: message.data });
    let id = message.messageId;
    if (!this.pending.has(id)) {
      // Fall back to the oldest pending request for the same command.
      id = [...this.pending.keys()].find((k) => this.pending.get(k).command === message.command);
    }
    const entry = id && this.pending.get(id);
    if (!entry || entry.command !== message.command) {
      return;
    }
    this.pending.delete(id);
    clearTimeout(entry.timer);
    const data = message.data || {};
    if (data.error || message.error) {
      entry.reject(new CommandError(message.command, data.error || message.error));
    } else {
      entry.resolve(data);
    }
  }
}
