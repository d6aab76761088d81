// A small client for Foxden's FxA auth API (same origin as the page).
//
// * JSON bodies are sent as "application/json; charset=utf-8"; the HAWK payload hash uses the
//   bare "application/json" (firefox-signin.md §3.5). Every POST signed with a token carries
//   a payload hash; GETs never do.
// * HAWK host/port come from the page origin, which is the public origin the server verifies
//   against (settings.public_url).
// * The clock offset is learnt from each response's Date header; a 401 errno 111 is retried
//   once with the server's `serverTime`.
// * Errors: FxaError with {status, errno, message, retryAfter, email, body}.
//
// No DOM access: the origin and fetch are injected, so node tests can drive it.

import { deriveTokenCredentials } from "./onepw.js";
import { hostPort, sign } from "./hawk.js";

export const ERRNO = Object.freeze({
  ACCOUNT_EXISTS: 101,
  ACCOUNT_UNKNOWN: 102,
  INCORRECT_PASSWORD: 103,
  UNVERIFIED_ACCOUNT: 104,
  INVALID_TOKEN: 110,
  INVALID_TIMESTAMP: 111,
  THROTTLED: 114,
  ENDPOINT_NOT_SUPPORTED: 116,
  INCORRECT_EMAIL_CASE: 120,
  UNKNOWN_DEVICE: 123,
  UNVERIFIED_SESSION: 138,
  FEATURE_NOT_ENABLED: 202,
  SERVER_BUSY: 201,
  NETWORK: 998,
  UNEXPECTED: 999,
});

export class FxaError extends Error {
  constructor(status, body) {
    const b = body && typeof body === "object" ? body : {};
    super(b.message || `Request failed (${status})`);
    this.status = status;
    this.errno = Number.isInteger(b.errno) ? b.errno : status === 0 ? ERRNO.NETWORK : ERRNO.UNEXPECTED;
    this.retryAfter = b.retryAfter;
    this.email = b.email;
    this.body = b;
  }
}

const JSON_TYPE = "application/json; charset=utf-8";

export class Api {
  /** origin: the page origin (location.origin); base: the auth API prefix. */
  constructor({ origin, base = "/v1", fetchImpl = globalThis.fetch.bind(globalThis) }) {
    this.origin = origin.replace(/\/$/, "");
    this.base = base.replace(/\/$/, "");
    this.fetch = fetchImpl;
    this.offsetMs = 0;
    const hp = hostPort(this.origin);
    this.host = hp.host;
    this.port = hp.port;
  }

  now() {
    return Date.now() + this.offsetMs;
  }

  _learnClock(response) {
    const date = response.headers.get("Date");
    const parsed = date ? Date.parse(date) : NaN;
    if (!Number.isNaN(parsed)) {
      this.offsetMs = parsed - Date.now();
    }
  }

  /**
   * method, path (relative to base, may hold a query), options {body, token, kind}.
   * token: hex FxA token to HAWK-sign with; kind: its HKDF name (default sessionToken).
   */
  async request(method, path, { body, token, kind = "sessionToken" } = {}, retried = false) {
    const resource = `${this.base}${path}`;
    const headers = { Accept: "application/json" };
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) {
      headers["Content-Type"] = JSON_TYPE;
    }
    if (token) {
      const creds = await deriveTokenCredentials(token, kind);
      const { header } = await sign(creds, method, resource, this.host, this.port, {
        ts: Math.floor(this.now() / 1000),
        payload: method === "GET" ? undefined : (payload ?? ""),
        contentType: JSON_TYPE,
      });
      headers.Authorization = header;
    }
    let response;
    try {
      response = await this.fetch(`${this.origin}${resource}`, {
        method,
        headers,
        body: payload,
        credentials: "omit",
        cache: "no-store",
        redirect: "error",
      });
    } catch (err) {
      throw new FxaError(0, { message: `Cannot reach the Foxden server (${err.message || err})` });
    }
    this._learnClock(response);
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const error = new FxaError(response.status, data);
      if (response.status === 401 && error.errno === ERRNO.INVALID_TIMESTAMP && token && !retried) {
        const serverTime = Number(data && data.serverTime);
        if (Number.isFinite(serverTime) && serverTime > 0) {
          this.offsetMs = serverTime * 1000 - Date.now();
        }
        return this.request(method, path, { body, token, kind }, true);
      }
      const retryAfter = response.headers.get("Retry-After");
      if (error.retryAfter === undefined && retryAfter) {
        error.retryAfter = Number(retryAfter);
      }
      throw error;
    }
    return data;
  }

  // --- accounts -------------------------------------------------------------------------
  login(email, authPW, extra = {}) {
    return this.request("POST", "/account/login?keys=true", {
      body: { email, authPW, service: "sync", reason: "signin", ...extra },
    });
  }

  create(email, authPW, extra = {}) {
    return this.request("POST", "/account/create?keys=true", {
      body: { email, authPW, service: "sync", ...extra },
    });
  }

  accountKeys(keyFetchToken) {
    return this.request("GET", "/account/keys", { token: keyFetchToken, kind: "keyFetchToken" });
  }

  scopedKeyData(sessionToken, clientId, scope) {
    return this.request("POST", "/account/scoped-key-data", {
      token: sessionToken, body: { client_id: clientId, scope },
    });
  }

  sessionStatus(sessionToken) {
    return this.request("GET", "/session/status", { token: sessionToken });
  }

  sessionDestroy(sessionToken) {
    return this.request("POST", "/session/destroy", { token: sessionToken, body: {} });
  }

  accountDestroy(sessionToken, email, authPW) {
    return this.request("POST", "/account/destroy", { token: sessionToken, body: { email, authPW } });
  }

  passwordChangeStart(email, oldAuthPW, sessionToken) {
    return this.request("POST", "/password/change/start", {
      token: sessionToken, body: { email, oldAuthPW },
    });
  }

  passwordChangeFinish(passwordChangeToken, body) {
    return this.request("POST", "/password/change/finish?keys=true", {
      token: passwordChangeToken, kind: "passwordChangeToken", body,
    });
  }

  devices(sessionToken) {
    return this.request("GET", "/account/devices", { token: sessionToken });
  }

  deviceDestroy(sessionToken, id) {
    return this.request("POST", "/account/device/destroy", { token: sessionToken, body: { id } });
  }

  attachedClients(sessionToken) {
    return this.request("GET", "/account/attached_clients", { token: sessionToken });
  }

  attachedClientDestroy(sessionToken, client) {
    const body = {};
    for (const key of ["clientId", "deviceId", "sessionTokenId", "refreshTokenId"]) {
      if (client[key]) {
        body[key] = client[key];
      }
    }
    return this.request("POST", "/account/attached_client/destroy", { token: sessionToken, body });
  }

  // --- oauth ----------------------------------------------------------------------------
  authorize(sessionToken, body) {
    return this.request("POST", "/oauth/authorization", { token: sessionToken, body });
  }
}
