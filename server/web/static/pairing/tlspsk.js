// Sans-IO TLS 1.3 external-PSK channel of Firefox QR pairing (the fxa-pairing-channel subset).
//
// The same protocol, states and errors as appliance/pairing/tlspsk.py (read its docstring
// for the full rules); wire rules: docs pairing.md §3, checked against
// mozilla/fxa-pairing-channel (FPC) src/. Pure ES module: WebCrypto only
// (globalThis.crypto.subtle), no DOM, runs in Firefox and node >= 20.
//
// Roles: the channel creator (authority) is the TLS server, the joiner (the phone's
// /pair/supp page) is the TLS client.
//
//   const conn = await ClientConnection.create(psk, channelId);   // ClientHello queued
//   relay(conn.dataToSend());                                   // one record per frame
//   const events = await conn.receiveRecord(record);            // drain dataToSend() after,
//                                                               // also after a throw
//   const records = await conn.sendData(utf8Bytes);             // one application_data record
//   const records = await conn.close();                         // close_notify (idempotent)
//
// Events: {type: "handshakeComplete"}, {type: "data", data: Uint8Array}, {type: "closed"}
// (peer's close_notify). States: CLIENT_WAIT_SH -> CLIENT_WAIT_EE -> CLIENT_WAIT_FINISHED ->
// CONNECTED; SERVER_START -> SERVER_WAIT_FINISHED -> CONNECTED; any -> ERROR (terminal).
// Errors (all TLSPSKError): TLSAlertError (peer broke the protocol; .description/.alertName,
// e.g. DECRYPT_ERROR = wrong PSK, BAD_RECORD_MAC = tampered/replayed/wrong key; an alert
// for the peer is queued), PeerAlert (peer sent a fatal alert), LocalProtocolError (misuse),
// ConnectionClosedError (direction already closed or connection failed).
// Calls on one connection are serialised internally (WebCrypto is async).

const CT_CCS = 20, CT_ALERT = 21, CT_HANDSHAKE = 22, CT_APPDATA = 23;
const HT_CLIENT_HELLO = 1, HT_SERVER_HELLO = 2, HT_NEW_SESSION_TICKET = 4;
const HT_ENCRYPTED_EXTENSIONS = 8, HT_FINISHED = 20;
const EXT_PSK = 41, EXT_SUPPORTED_VERSIONS = 43, EXT_PSK_MODES = 45;
const TLS10 = 0x0301, TLS12 = 0x0303, TLS13 = 0x0304, AES128GCM_SHA256 = 0x1301;
const HASH_LEN = 32, KEY_LEN = 16, IV_LEN = 12, TAG_LEN = 16;
export const MAX_PLAINTEXT = 2 ** 14; // FPC refuses more and never fragments
const MAX_CIPHERTEXT = 2 ** 14 + 256;
export const MAX_SEQUENCE = 2 ** 24; // FPC's per-key record cap
const ZEROS = new Uint8Array(HASH_LEN);
const CCS_RECORD = new Uint8Array([CT_CCS, 3, 3, 0, 1, 1]);

export const AlertDescription = Object.freeze({
  CLOSE_NOTIFY: 0, UNEXPECTED_MESSAGE: 10, BAD_RECORD_MAC: 20, RECORD_OVERFLOW: 22,
  HANDSHAKE_FAILURE: 40, ILLEGAL_PARAMETER: 47, DECODE_ERROR: 50, DECRYPT_ERROR: 51,
  PROTOCOL_VERSION: 70, INTERNAL_ERROR: 80, MISSING_EXTENSION: 109,
  UNSUPPORTED_EXTENSION: 110, UNKNOWN_PSK_IDENTITY: 115,
});
const A = AlertDescription;
const alertName = (d) => Object.keys(A).find((k) => A[k] === d) ?? `UNKNOWN(${d})`;

export const State = Object.freeze({
  CLIENT_WAIT_SH: "CLIENT_WAIT_SH", CLIENT_WAIT_EE: "CLIENT_WAIT_EE",
  CLIENT_WAIT_FINISHED: "CLIENT_WAIT_FINISHED", SERVER_START: "SERVER_START",
  SERVER_WAIT_FINISHED: "SERVER_WAIT_FINISHED", CONNECTED: "CONNECTED", ERROR: "ERROR",
});

export class TLSPSKError extends Error {
  get name() { return this.constructor.name; }
}
export class LocalProtocolError extends TLSPSKError {}
export class ConnectionClosedError extends TLSPSKError {}
export class PeerAlert extends TLSPSKError {
  constructor(description) {
    super(`peer sent fatal alert ${alertName(description)} (${description})`);
    this.description = description;
    this.alertName = alertName(description);
  }
}
export class TLSAlertError extends TLSPSKError {
  constructor(description, detail = "") {
    super(detail ? `${alertName(description)}: ${detail}` : alertName(description));
    this.description = description;
    this.alertName = alertName(description);
  }
}
const fail = (d, detail) => new TLSAlertError(d, detail);

// --- bytes ------------------------------------------------------------------------------

const enc = new TextEncoder();
function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
}
function uint(value, n) {
  const out = new Uint8Array(n);
  for (let i = n - 1; i >= 0; i--) { out[i] = value & 0xff; value = Math.floor(value / 256); }
  return out;
}
const vec = (n, body) => concat(uint(body.length, n), body);
const ext = (type, body) => concat(uint(type, 2), vec(2, body));
const handshake = (type, body) => concat(uint(type, 1), vec(3, body));
function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
function toBytes(value, what) {
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new LocalProtocolError(`${what} must be bytes`);
}

class Reader {
  constructor(data) { this.data = data; this.pos = 0; }
  remaining() { return this.data.length - this.pos; }
  read(n) {
    if (n > this.remaining()) throw fail(A.DECODE_ERROR, "truncated");
    const out = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  uint(n) { return this.read(n).reduce((acc, b) => acc * 256 + b, 0); }
  vector(n) { return this.read(this.uint(n)); }
  sub(n) { return new Reader(this.vector(n)); }
  end() { if (this.remaining()) throw fail(A.DECODE_ERROR, "trailing bytes"); }
}

// Padded base64url, as FPC's PairingChannel puts one record in each relay frame (§2.4);
// decoding accepts padded and unpadded input, like FPC's atob.
export function recordToFrame(record) {
  let s = "";
  for (const b of record) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_");
}
export function frameToRecord(frame) {
  if (typeof frame !== "string" || !/^[A-Za-z0-9_-]*={0,2}$/.test(frame)) {
    throw new TLSPSKError("frame is not base64url");
  }
  let s;
  try {
    s = atob(frame.replace(/-/g, "+").replace(/_/g, "/"));
  } catch {
    throw new TLSPSKError("frame is not base64url");
  }
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

// --- crypto ---------------------------------------------------------------------------

const subtle = () => globalThis.crypto.subtle;
const sha256 = async (data) => new Uint8Array(await subtle().digest("SHA-256", data));
const hmacKey = (key, usage) =>
  subtle().importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, [usage]);
async function hmac(key, msg) {
  return new Uint8Array(await subtle().sign("HMAC", await hmacKey(key, "sign"), msg));
}
async function hmacVerify(key, msg, mac) {
  if (!(await subtle().verify("HMAC", await hmacKey(key, "verify"), mac, msg))) {
    throw fail(A.DECRYPT_ERROR, "MAC does not verify (wrong PSK?)");
  }
}
const hkdfExtract = (salt, ikm) => hmac(salt, ikm); // RFC 5869 §2.2

async function hkdfExpand(prk, info, length) {
  // RFC 5869 §2.3 on HMAC: WebCrypto's HKDF always extracts first.
  const out = [];
  let t = new Uint8Array(0);
  for (let i = 1; out.length * HASH_LEN < length; i++) {
    t = await hmac(prk, concat(t, info, new Uint8Array([i])));
    out.push(t);
  }
  return concat(...out).slice(0, length);
}

export async function hkdfExpandLabel(secret, label, context, length) {
  const full = enc.encode("tls13 " + label);
  return hkdfExpand(secret, concat(uint(length, 2), vec(1, full), vec(1, context)), length);
}

export class KeySchedule {
  constructor() {
    this.transcript = new Uint8Array(0);
    this.stage = 0;
    this.secret = null;
    this.extBinderKey = null;
    this.clientHandshakeTrafficSecret = null;
    this.serverHandshakeTrafficSecret = null;
    this.clientApplicationTrafficSecret = null;
    this.serverApplicationTrafficSecret = null;
  }
  addToTranscript(bytes) { this.transcript = concat(this.transcript, bytes); }
  nextStage(expected) {
    if (this.stage !== expected) throw fail(A.INTERNAL_ERROR, "key schedule used out of order");
    this.stage += 1;
  }
  async deriveSecret(label, messages = this.transcript) {
    return hkdfExpandLabel(this.secret, label, await sha256(messages), HASH_LEN);
  }
  async addPSK(psk) {
    this.nextStage(0);
    this.secret = await hkdfExtract(ZEROS, psk);
    this.extBinderKey = await this.deriveSecret("ext binder", new Uint8Array(0));
    this.secret = await this.deriveSecret("derived", new Uint8Array(0));
  }
  async addECDHE() {
    this.nextStage(1); // psk_ke: the (EC)DHE input is 32 zero bytes
    this.extBinderKey = null;
    this.secret = await hkdfExtract(this.secret, ZEROS);
    this.clientHandshakeTrafficSecret = await this.deriveSecret("c hs traffic");
    this.serverHandshakeTrafficSecret = await this.deriveSecret("s hs traffic");
    this.secret = await this.deriveSecret("derived", new Uint8Array(0));
  }
  async finalize() {
    this.nextStage(2);
    this.clientHandshakeTrafficSecret = this.serverHandshakeTrafficSecret = null;
    this.secret = await hkdfExtract(this.secret, ZEROS);
    this.clientApplicationTrafficSecret = await this.deriveSecret("c ap traffic");
    this.serverApplicationTrafficSecret = await this.deriveSecret("s ap traffic");
    this.secret = null;
  }
  static async finishedMac(baseKey, transcript) {
    const key = await hkdfExpandLabel(baseKey, "finished", new Uint8Array(0), HASH_LEN);
    return hmac(key, await sha256(transcript));
  }
  static async verifyFinishedMac(baseKey, transcript, mac) {
    const key = await hkdfExpandLabel(baseKey, "finished", new Uint8Array(0), HASH_LEN);
    await hmacVerify(key, await sha256(transcript), mac);
  }
}

export class CipherState {
  static async create(secret) {
    const self = new CipherState();
    const raw = await hkdfExpandLabel(secret, "key", new Uint8Array(0), KEY_LEN);
    self.key = await subtle().importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
    self.iv = await hkdfExpandLabel(secret, "iv", new Uint8Array(0), IV_LEN);
    self.seq = 0;
    return self;
  }
  nonce() {
    if (this.seq >= MAX_SEQUENCE) throw fail(A.INTERNAL_ERROR, "sequence number exhausted");
    const nonce = this.iv.slice();
    const seq = uint(this.seq, 8); // < 2^24, exact as a double
    for (let i = 0; i < 8; i++) nonce[IV_LEN - 8 + i] ^= seq[i];
    this.seq += 1;
    return nonce;
  }
  async encrypt(inner, aad) {
    const params = { name: "AES-GCM", iv: this.nonce(), additionalData: aad, tagLength: 128 };
    return new Uint8Array(await subtle().encrypt(params, this.key, inner));
  }
  async decrypt(ciphertext, aad) {
    const params = { name: "AES-GCM", iv: this.nonce(), additionalData: aad, tagLength: 128 };
    try {
      return new Uint8Array(await subtle().decrypt(params, this.key, ciphertext));
    } catch {
      throw fail(A.BAD_RECORD_MAC, "record does not decrypt");
    }
  }
}

// --- message parsing ------------------------------------------------------------------

function uint16List(r) {
  const out = [];
  while (r.remaining()) out.push(r.uint(2));
  return out;
}

function parseExtension(msgType, type, body) {
  const r = new Reader(body);
  let value = null; // unknown extensions: skipped, but still counted (FPC)
  const known = type === EXT_PSK || type === EXT_SUPPORTED_VERSIONS || type === EXT_PSK_MODES;
  if (type === EXT_PSK && msgType === HT_CLIENT_HELLO) {
    const ids = r.sub(2), identities = [], binders = [];
    while (ids.remaining()) { identities.push(ids.vector(2)); ids.read(4); }
    const bs = r.sub(2);
    while (bs.remaining()) {
      const binder = bs.vector(1);
      if (binder.length < HASH_LEN) throw fail(A.ILLEGAL_PARAMETER, "PSK binder too short");
      binders.push(binder);
    }
    if (identities.length !== binders.length) {
      throw fail(A.ILLEGAL_PARAMETER, "PSK identities and binders differ in number");
    }
    value = { identities, binders };
  } else if (type === EXT_PSK && msgType === HT_SERVER_HELLO) {
    value = r.uint(2);
  } else if (type === EXT_SUPPORTED_VERSIONS && msgType === HT_CLIENT_HELLO) {
    value = uint16List(r.sub(1));
  } else if (type === EXT_SUPPORTED_VERSIONS && msgType === HT_SERVER_HELLO) {
    value = r.uint(2);
  } else if (type === EXT_PSK_MODES && msgType === HT_CLIENT_HELLO) {
    value = Array.from(r.vector(1));
  } else if (known) {
    throw fail(A.ILLEGAL_PARAMETER, `extension ${type} not allowed in message ${msgType}`);
  } else {
    r.read(r.remaining());
  }
  r.end();
  return value;
}

function parseExtensions(msgType, r) {
  const exts = new Map(); // insertion order = wire order
  const er = r.sub(2);
  while (er.remaining()) {
    const type = er.uint(2), body = er.vector(2);
    if (exts.has(type)) throw fail(A.DECODE_ERROR, `duplicate extension ${type}`);
    exts.set(type, parseExtension(msgType, type, body));
  }
  return exts;
}

function parseHandshake(type, body) {
  const r = new Reader(body);
  let msg;
  if (type === HT_CLIENT_HELLO) {
    if (r.uint(2) < TLS10) throw fail(A.PROTOCOL_VERSION, "ClientHello predates TLS 1.0");
    r.read(32);
    const sessionId = r.vector(1);
    if (!uint16List(r.sub(2)).includes(AES128GCM_SHA256)) {
      throw fail(A.HANDSHAKE_FAILURE, "TLS_AES_128_GCM_SHA256 not offered");
    }
    const comp = r.vector(1);
    if (comp.length !== 1 || comp[0] !== 0) throw fail(A.ILLEGAL_PARAMETER, "compression");
    const exts = parseExtensions(type, r);
    const versions = exts.get(EXT_SUPPORTED_VERSIONS);
    if (!Array.isArray(versions)) throw fail(A.MISSING_EXTENSION, "supported_versions");
    if (!versions.includes(TLS13)) throw fail(A.PROTOCOL_VERSION, "TLS 1.3 not offered");
    if (exts.has(EXT_PSK) && [...exts.keys()].at(-1) !== EXT_PSK) {
      throw fail(A.ILLEGAL_PARAMETER, "pre_shared_key must be the last extension");
    }
    msg = { type, sessionId, exts };
  } else if (type === HT_SERVER_HELLO) {
    if (r.uint(2) !== TLS12) throw fail(A.ILLEGAL_PARAMETER, "ServerHello legacy_version");
    r.read(32);
    const sessionId = r.vector(1);
    if (r.uint(2) !== AES128GCM_SHA256) throw fail(A.ILLEGAL_PARAMETER, "cipher suite");
    if (r.uint(1) !== 0) throw fail(A.ILLEGAL_PARAMETER, "compression method");
    const exts = parseExtensions(type, r);
    if (!exts.has(EXT_SUPPORTED_VERSIONS)) throw fail(A.MISSING_EXTENSION, "supported_versions");
    if (exts.get(EXT_SUPPORTED_VERSIONS) !== TLS13) throw fail(A.ILLEGAL_PARAMETER, "not TLS 1.3");
    msg = { type, sessionId, exts };
  } else if (type === HT_ENCRYPTED_EXTENSIONS) {
    msg = { type, exts: parseExtensions(type, r) };
  } else if (type === HT_FINISHED) {
    msg = { type, verifyData: r.read(HASH_LEN) };
  } else if (type === HT_NEW_SESSION_TICKET) {
    r.read(8);
    r.vector(1);
    if (!r.vector(2).length) throw fail(A.DECODE_ERROR, "empty session ticket");
    parseExtensions(type, r);
    msg = { type };
  } else {
    throw fail(A.UNEXPECTED_MESSAGE, `handshake message type ${type}`);
  }
  r.end();
  return msg;
}

// --- connections ------------------------------------------------------------------------

export class Connection {
  constructor(psk, pskId, { random, state }) {
    this.psk = toBytes(psk, "psk");
    this.pskId = typeof pskId === "string" ? enc.encode(pskId) : toBytes(pskId, "pskId");
    if (!this.psk.length) throw new LocalProtocolError("psk must not be empty");
    if (!this.pskId.length || this.pskId.length >= 2 ** 16) {
      throw new LocalProtocolError("pskId must be 1..65535 bytes");
    }
    this._random = random ?? ((n) => globalThis.crypto.getRandomValues(new Uint8Array(n)));
    this._state = state;
    this._ks = new KeySchedule();
    this._send = null;
    this._recv = null;
    this._outbox = [];
    this._seenCCS = false;
    this._hs = null;
    this._queue = Promise.resolve();
    this.weClosed = false;
    this.peerClosed = false;
    this.error = null;
  }

  get state() { return this._state; }
  get handshakeComplete() { return this._state === State.CONNECTED; }
  get ended() { return this._state === State.ERROR || (this.weClosed && this.peerClosed); }

  dataToSend() {
    const out = this._outbox;
    this._outbox = [];
    return out;
  }

  // One call at a time, in call order, like FPC's _synchronized.
  _serial(fn) {
    const run = this._queue.then(fn);
    this._queue = run.then(() => {}, () => {});
    return run;
  }

  receiveRecord(record) {
    return this._serial(async () => {
      const bytes = toBytes(record, "record");
      if (this._state === State.ERROR) throw new ConnectionClosedError("connection failed");
      if (this.peerClosed) throw new ConnectionClosedError("peer already sent close_notify");
      return this._guard(() => this._receive(bytes));
    });
  }

  sendData(data) {
    return this._serial(async () => {
      const bytes = toBytes(data, "data");
      this._checkCanSend();
      if (this._state !== State.CONNECTED) {
        throw new LocalProtocolError(`cannot send application data in ${this._state}`);
      }
      if (bytes.length > MAX_PLAINTEXT) {
        throw new LocalProtocolError(`at most ${MAX_PLAINTEXT} bytes per record`);
      }
      await this._guard(() => this._sendRecord(CT_APPDATA, bytes));
      return this.dataToSend();
    });
  }

  close() {
    return this._serial(async () => {
      if (!this.weClosed && this._state !== State.ERROR) {
        await this._guard(() => this._sendRecord(CT_ALERT, new Uint8Array([1, 0])));
        this.weClosed = true;
      }
      return this.dataToSend();
    });
  }

  _checkCanSend() {
    if (this._state === State.ERROR) throw new ConnectionClosedError("connection failed");
    if (this.weClosed) throw new ConnectionClosedError("close_notify already sent");
  }

  async _guard(fn) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof TLSAlertError) await this._fail(err);
      else if (err instanceof PeerAlert) { this._state = State.ERROR; this.error = err; }
      throw err;
    }
  }

  async _fail(err) {
    if (this._state === State.ERROR) return;
    if (!this.weClosed) {
      try {
        await this._sendRecord(CT_ALERT, new Uint8Array([2, err.description]));
      } catch {
        // e.g. sequence numbers exhausted: the peer just sees the channel drop
      }
    }
    this._state = State.ERROR;
    this.error = err;
  }

  async _sendRecord(type, payload) {
    if (this._send === null) {
      this._outbox.push(concat(new Uint8Array([type, 3, 3]), uint(payload.length, 2), payload));
      return;
    }
    const inner = concat(payload, new Uint8Array([type])); // no padding, as FPC
    const header = concat(new Uint8Array([CT_APPDATA, 3, 3]), uint(inner.length + TAG_LEN, 2));
    this._outbox.push(concat(header, await this._send.encrypt(inner, header)));
  }

  _requireRecordEnd() {
    // A message that changes keys must end its record (FPC _setRecvKey); checked before
    // anything is queued.
    if (this._hs && this._hs.remaining()) {
      throw fail(A.UNEXPECTED_MESSAGE, "data after a key change in the same record");
    }
  }

  async _receive(record) {
    const r = new Reader(record);
    let type = r.uint(1);
    const version = r.uint(2);
    if (version !== TLS12 && (this._recv !== null || version !== TLS10)) {
      throw fail(A.DECODE_ERROR, `record version ${version}`);
    }
    const length = r.uint(2);
    let payload;
    if (this._recv === null || type === CT_CCS) {
      if (length > MAX_PLAINTEXT) throw fail(A.RECORD_OVERFLOW, "plaintext record too long");
      payload = r.read(length);
    } else {
      if (length > MAX_CIPHERTEXT) throw fail(A.RECORD_OVERFLOW, "encrypted record too long");
      if (type !== CT_APPDATA) throw fail(A.DECODE_ERROR, "encrypted record with outer type != 23");
      const ciphertext = r.read(length);
      const inner = await this._recv.decrypt(ciphertext, record.subarray(0, 5));
      let i = inner.length - 1;
      while (i >= 0 && inner[i] === 0) i--;
      if (i < 0) throw fail(A.UNEXPECTED_MESSAGE, "record without content type");
      type = inner[i];
      payload = inner.subarray(0, i);
      if (type === CT_CCS) throw fail(A.DECODE_ERROR, "encrypted change_cipher_spec");
    }
    r.end(); // exactly one record per frame
    if (type === CT_CCS) {
      const mid = this._state === State.CLIENT_WAIT_EE || this._state === State.SERVER_WAIT_FINISHED;
      if (!mid) throw fail(A.UNEXPECTED_MESSAGE, `change_cipher_spec in ${this._state}`);
      if (this._seenCCS || payload.length !== 1 || payload[0] !== 1) {
        throw fail(A.UNEXPECTED_MESSAGE, "second or malformed change_cipher_spec");
      }
      this._seenCCS = true;
      return [];
    }
    if (type === CT_ALERT) {
      if (payload.length !== 2) throw fail(A.DECODE_ERROR, "alert must be 2 bytes");
      if (payload[1] === A.CLOSE_NOTIFY) {
        if (payload[0] !== 1) throw fail(A.ILLEGAL_PARAMETER, "close_notify must be a warning");
        this.peerClosed = true;
        return [{ type: "closed" }];
      }
      throw new PeerAlert(payload[1]); // TLS 1.3: every other alert is fatal
    }
    if (type === CT_APPDATA) {
      if (this._state !== State.CONNECTED) {
        throw fail(A.UNEXPECTED_MESSAGE, `application data in ${this._state}`);
      }
      return [{ type: "data", data: payload.slice() }];
    }
    if (type === CT_HANDSHAKE) {
      if (!payload.length) throw fail(A.UNEXPECTED_MESSAGE, "empty handshake record");
      const events = [];
      const hr = (this._hs = new Reader(payload));
      try {
        while (hr.remaining()) {
          const msgType = hr.uint(1);
          const body = hr.vector(3); // no fragmentation across records, as FPC
          this._ks.addToTranscript(handshake(msgType, body));
          events.push(...(await this._handle(parseHandshake(msgType, body))));
        }
      } finally {
        this._hs = null;
      }
      return events;
    }
    throw fail(A.UNEXPECTED_MESSAGE, `record type ${type}`);
  }
}

export class ClientConnection extends Connection {
  // The joiner (the phone's supplicant page); the ClientHello is queued on creation.
  static async create(psk, pskId, { random } = {}) {
    const self = new ClientConnection(psk, pskId, { random, state: State.CLIENT_WAIT_SH });
    await self._ks.addPSK(self.psk);
    const clientRandom = toBytes(self._random(32), "random"); // random first, then session id
    self._sessionId = toBytes(self._random(32), "random"); // non-empty, as FPC
    if (clientRandom.length !== 32 || self._sessionId.length !== 32) {
      throw new LocalProtocolError("random(32) must return 32 bytes");
    }
    const exts = concat(
      ext(EXT_SUPPORTED_VERSIONS, vec(1, uint(TLS13, 2))),
      ext(EXT_PSK_MODES, vec(1, new Uint8Array([0]))),
      ext(EXT_PSK, concat(vec(2, concat(vec(2, self.pskId), new Uint8Array(4))),
        vec(2, vec(1, ZEROS)))),
    );
    const body = concat(uint(TLS12, 2), clientRandom, vec(1, self._sessionId),
      vec(2, uint(AES128GCM_SHA256, 2)), vec(1, new Uint8Array([0])), vec(2, exts));
    const hello = handshake(HT_CLIENT_HELLO, body);
    // The binder covers the ClientHello up to the binders list (u16 + u8 + 32 bytes).
    const binder = await KeySchedule.finishedMac(self._ks.extBinderKey,
      hello.subarray(0, hello.length - (HASH_LEN + 3)));
    hello.set(binder, hello.length - HASH_LEN);
    self._ks.addToTranscript(hello);
    await self._sendRecord(CT_HANDSHAKE, hello);
    return self;
  }

  async _handle(msg) {
    const ks = this._ks;
    if (this._state === State.CLIENT_WAIT_SH) {
      if (msg.type !== HT_SERVER_HELLO) throw fail(A.UNEXPECTED_MESSAGE, "expected ServerHello");
      if (!equal(msg.sessionId, this._sessionId)) {
        throw fail(A.ILLEGAL_PARAMETER, "ServerHello did not echo our session id");
      }
      if (!msg.exts.has(EXT_PSK)) throw fail(A.MISSING_EXTENSION, "pre_shared_key");
      if (msg.exts.size !== 2) throw fail(A.UNSUPPORTED_EXTENSION, "unexpected extension");
      if (msg.exts.get(EXT_PSK) !== 0) throw fail(A.ILLEGAL_PARAMETER, "unknown PSK selected");
      this._requireRecordEnd();
      await ks.addECDHE();
      this._send = await CipherState.create(ks.clientHandshakeTrafficSecret);
      this._recv = await CipherState.create(ks.serverHandshakeTrafficSecret);
      this._state = State.CLIENT_WAIT_EE;
      return [];
    }
    if (this._state === State.CLIENT_WAIT_EE) {
      if (msg.type !== HT_ENCRYPTED_EXTENSIONS) {
        throw fail(A.UNEXPECTED_MESSAGE, "expected EncryptedExtensions");
      }
      if (msg.exts.size) throw fail(A.UNSUPPORTED_EXTENSION, "EncryptedExtensions must be empty");
      this._serverFinishedTranscript = ks.transcript;
      this._state = State.CLIENT_WAIT_FINISHED;
      return [];
    }
    if (this._state === State.CLIENT_WAIT_FINISHED) {
      if (msg.type !== HT_FINISHED) throw fail(A.UNEXPECTED_MESSAGE, "expected Finished");
      const cHs = ks.clientHandshakeTrafficSecret, sHs = ks.serverHandshakeTrafficSecret;
      await KeySchedule.verifyFinishedMac(sHs, this._serverFinishedTranscript, msg.verifyData);
      this._requireRecordEnd();
      // Application secrets cover CH..server Finished, not our own Finished.
      const finished = handshake(HT_FINISHED, await KeySchedule.finishedMac(cHs, ks.transcript));
      await ks.finalize();
      ks.addToTranscript(finished);
      await this._sendRecord(CT_HANDSHAKE, finished); // still under the handshake key
      this._send = await CipherState.create(ks.clientApplicationTrafficSecret);
      this._recv = await CipherState.create(ks.serverApplicationTrafficSecret);
      this._state = State.CONNECTED;
      return [{ type: "handshakeComplete" }];
    }
    if (msg.type === HT_NEW_SESSION_TICKET) return []; // accepted and ignored, as FPC
    throw fail(A.UNEXPECTED_MESSAGE, `handshake message in ${this._state}`);
  }
}

export class ServerConnection extends Connection {
  // The channel creator (authority); answers a ClientHello carrying our PSK.
  static async create(psk, pskId, { random } = {}) {
    return new ServerConnection(psk, pskId, { random, state: State.SERVER_START });
  }

  async _handle(msg) {
    const ks = this._ks;
    if (this._state === State.SERVER_START) {
      if (msg.type !== HT_CLIENT_HELLO) throw fail(A.UNEXPECTED_MESSAGE, "expected ClientHello");
      const offered = msg.exts.get(EXT_PSK), modes = msg.exts.get(EXT_PSK_MODES);
      if (!offered || !modes) throw fail(A.MISSING_EXTENSION, "pre_shared_key / psk modes");
      if (!modes.includes(0)) throw fail(A.HANDSHAKE_FAILURE, "psk_ke not offered");
      const index = offered.identities.findIndex((id) => equal(id, this.pskId));
      if (index < 0) throw fail(A.UNKNOWN_PSK_IDENTITY, "our channel id is not offered");
      await ks.addPSK(this.psk);
      const bindersLen = 2 + offered.binders.reduce((n, b) => n + b.length + 1, 0);
      const truncated = ks.transcript.subarray(0, ks.transcript.length - bindersLen);
      await KeySchedule.verifyFinishedMac(ks.extBinderKey, truncated, offered.binders[index]);
      const serverRandom = toBytes(this._random(32), "random");
      if (serverRandom.length !== 32) throw fail(A.INTERNAL_ERROR, "random(32) gave wrong size");
      this._requireRecordEnd();
      const exts = concat(ext(EXT_SUPPORTED_VERSIONS, uint(TLS13, 2)), ext(EXT_PSK, uint(index, 2)));
      const hello = handshake(HT_SERVER_HELLO, concat(uint(TLS12, 2), serverRandom,
        vec(1, msg.sessionId), uint(AES128GCM_SHA256, 2), new Uint8Array([0]), vec(2, exts)));
      ks.addToTranscript(hello);
      await this._sendRecord(CT_HANDSHAKE, hello);
      if (msg.sessionId.length) this._outbox.push(CCS_RECORD.slice()); // RFC 8446 §D.4
      await ks.addECDHE();
      const sHs = ks.serverHandshakeTrafficSecret, cHs = ks.clientHandshakeTrafficSecret;
      this._send = await CipherState.create(sHs);
      this._recv = await CipherState.create(cHs);
      const ee = handshake(HT_ENCRYPTED_EXTENSIONS, vec(2, new Uint8Array(0)));
      ks.addToTranscript(ee);
      const finished = handshake(HT_FINISHED, await KeySchedule.finishedMac(sHs, ks.transcript));
      ks.addToTranscript(finished);
      await this._sendRecord(CT_HANDSHAKE, concat(ee, finished)); // one record, as FPC
      this._clientFinished = [cHs, ks.transcript];
      await ks.finalize();
      this._send = await CipherState.create(ks.serverApplicationTrafficSecret);
      this._state = State.SERVER_WAIT_FINISHED;
      return [];
    }
    if (this._state === State.SERVER_WAIT_FINISHED) {
      if (msg.type !== HT_FINISHED) throw fail(A.UNEXPECTED_MESSAGE, "expected client Finished");
      const [cHs, transcript] = this._clientFinished;
      await KeySchedule.verifyFinishedMac(cHs, transcript, msg.verifyData);
      this._requireRecordEnd();
      this._recv = await CipherState.create(ks.clientApplicationTrafficSecret);
      this._state = State.CONNECTED;
      return [{ type: "handshakeComplete" }];
    }
    throw fail(A.UNEXPECTED_MESSAGE, `handshake message in ${this._state}`);
  }
}
