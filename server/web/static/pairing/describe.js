// Plain-language descriptions for the pairing pages: devices from a User-Agent, the place
// from relay metadata, app names from OAuth client ids. Pure: no DOM, runs in node.

import { PAIRING_CLIENTS } from "./supplicant.js";

/** "Firefox on Android", "Firefox on iPhone", … from a User-Agent string. */
export function describeDevice(ua) {
  const s = String(ua || "");
  if (!s) return "an unknown device";
  const firefox = /firefox|fxios|gecko\//i.test(s);
  const app = firefox ? "Firefox" : "a browser";
  let os = "";
  if (/android/i.test(s)) os = "Android";
  else if (/ipad/i.test(s)) os = "iPad";
  else if (/iphone|ipod|fxios/i.test(s)) os = "iPhone";
  else if (/windows/i.test(s)) os = "Windows";
  else if (/mac os x|macintosh/i.test(s)) os = "macOS";
  else if (/linux|x11/i.test(s)) os = "Linux";
  return os ? `${app} on ${os}` : app;
}

/** True for a phone or tablet User-Agent. */
export function isMobile(ua) {
  return /android|iphone|ipad|ipod|fxios|mobile/i.test(String(ua || ""));
}

/**
 * Where the other device is: "Paris, Île-de-France, France", or for our relay (which has
 * no GeoIP, server/pairing/routes.py) "on your network (192.168.1.20)".
 */
export function describePlace(meta) {
  const m = meta || {};
  const parts = [m.city, m.region, m.country].filter((p) => typeof p === "string" && p);
  const ip = typeof m.ipAddress === "string" ? m.ipAddress : (typeof m.remote === "string" ? m.remote : "");
  if (parts.length) return ip ? `${parts.join(", ")} (${ip})` : parts.join(", ");
  return ip ? `on your network (${ip})` : "on your network";
}

/** The app asking for the account, from its OAuth client id. */
export function clientName(clientId) {
  const id = String(clientId || "").toLowerCase();
  return Object.hasOwn(PAIRING_CLIENTS, id) ? PAIRING_CLIENTS[id] : "an app";
}
