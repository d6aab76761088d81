// Small DOM helpers shared by the pages. Screens are <section data-screen id="screen-NAME">;
// exactly one is visible, and <body data-state="NAME"> names it (the e2e driver polls it).

export const $ = (id) => document.getElementById(id);

export function show(name, { focus = true } = {}) {
  for (const el of document.querySelectorAll("[data-screen]")) {
    el.hidden = el.id !== `screen-${name}`;
  }
  document.body.dataset.state = name;
  if (focus) {
    const screen = $(`screen-${name}`);
    const target = screen && (screen.querySelector("[autofocus], input:not([type=hidden]):not([disabled])") || screen.querySelector("h1"));
    if (target) {
      if (target.tagName === "H1") {
        target.tabIndex = -1;
      }
      target.focus();
    }
  }
}

export function setText(id, text) {
  const el = $(id);
  if (el) {
    el.textContent = text;
  }
}

/** Show (or clear, with "") an error paragraph. */
export function setError(id, text) {
  const el = $(id);
  if (!el) {
    return;
  }
  el.textContent = text || "";
  el.hidden = !text;
}

export function setBusy(button, busy, busyLabel) {
  if (!button) {
    return;
  }
  if (busy) {
    button.dataset.label = button.textContent;
    button.textContent = busyLabel || "Please wait…";
    button.disabled = true;
  } else {
    if (button.dataset.label) {
      button.textContent = button.dataset.label;
    }
    button.disabled = false;
  }
}

/** Fill [data-origin] and [data-host] placeholders with this page's origin and host. */
export function fillOrigin() {
  for (const el of document.querySelectorAll("[data-origin]")) {
    el.textContent = location.origin;
  }
  for (const el of document.querySelectorAll("[data-host]")) {
    el.textContent = location.hostname.replace(/^\[(.*)\]$/, "$1");
  }
}

/** Links that must keep the page's query string (Firefox's OAuth parameters). */
export function keepQuery() {
  for (const a of document.querySelectorAll("a[data-keep-query]")) {
    const url = new URL(a.getAttribute("href"), location.href);
    url.search = location.search;
    a.href = url.pathname + url.search;
  }
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "dataset") {
      Object.assign(node.dataset, value);
    } else if (key in node && typeof value !== "string") {
      node[key] = value;
    } else {
      node.setAttribute(key, value);
    }
  }
  for (const child of children) {
    node.append(child);
  }
  return node;
}
