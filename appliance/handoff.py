"""The plain-HTTP hand-off: the one thing served without TLS on the LAN.

A phone or PC that does not trust Foxden's CA yet can only reach plain http.  This tiny ASGI
app serves a page explaining how to trust the CA on each platform, the CA itself (``/ca.pem``
and DER ``/ca.crt``) with its fingerprint, and redirects everything else to HTTPS.
"""

from __future__ import annotations

import html
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
            (b"cache-control", b"no-store")]
_CSP = (b"default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


class HandoffApp:
    def __init__(self, public_url: str, ca_cert: x509.Certificate, fingerprint: str) -> None:
        self.public_url = public_url.rstrip("/")
        self.pem = ca_cert.public_bytes(serialization.Encoding.PEM)
        self.der = ca_cert.public_bytes(serialization.Encoding.DER)
        self.fingerprint = fingerprint
        self.page = _page(self.public_url, fingerprint).encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope.get("path", "/")
        if path in ("/", "/index.html", "/trust"):
            await _respond(send, 200, b"text/html; charset=utf-8", self.page,
                           [(b"content-security-policy", _CSP)])
        elif path == "/ca.pem":
            await _respond(send, 200, b"application/x-pem-file", self.pem,
                           [(b"content-disposition", b'attachment; filename="foxden-ca.pem"')])
        elif path == "/ca.crt":
            await _respond(send, 200, b"application/x-x509-ca-cert", self.der,
                           [(b"content-disposition", b'attachment; filename="foxden-ca.crt"')])
        else:
            query = scope.get("query_string", b"")
            target = self.public_url + path + ("?" + query.decode("latin-1") if query else "")
            await _respond(send, 301, b"text/plain; charset=utf-8",
                           b"Foxden answers on HTTPS: " + target.encode(),
                           [(b"location", target.encode())])


async def _respond(send: Any, status: int, ctype: bytes, body: bytes,
                   extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
               *_HEADERS, *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _page(public_url: str, fingerprint: str) -> str:
    url = html.escape(public_url)
    fp = html.escape(fingerprint)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Trust your Foxden</title>
<style>body{{font:18px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}}
code{{word-break:break-all;background:#f3f3f3;padding:.1rem .3rem}}h2{{margin-top:2rem}}</style>
</head><body>
<h1>Trust your household's Foxden</h1>
<p>Foxden keeps your Firefox data on this home network and talks to your devices over
HTTPS at <a href="{url}">{url}</a>. Each device must trust Foxden's own certificate
authority once. Download it here: <a href="/ca.pem">foxden-ca.pem</a>
(<a href="/ca.crt">.crt for phones</a>).</p>
<p>Before you trust it, check that this fingerprint matches the one the Foxden tray app
(or <code>foxden status</code>) shows:<br><code>SHA-256 {fp}</code></p>
<h2>Windows</h2><p>Open foxden-ca.crt, choose <em>Install Certificate</em>, <em>Local
Machine</em>, then <em>Place all certificates in the following store</em> &rarr;
<em>Trusted Root Certification Authorities</em>.</p>
<h2>macOS</h2><p>Open foxden-ca.pem in Keychain Access, add it to the <em>System</em>
keychain, double-click it and set <em>When using this certificate</em> to <em>Always
Trust</em>.</p>
<h2>Firefox on Linux (and any desktop Firefox)</h2><p>Settings &rarr; Privacy &amp;
Security &rarr; Certificates &rarr; <em>View Certificates</em> &rarr; Authorities &rarr;
<em>Import</em>, pick foxden-ca.pem and tick <em>Trust this CA to identify websites</em>.</p>
<h2>Android</h2><p>Settings &rarr; Security &rarr; Encryption &amp; credentials &rarr;
<em>Install a certificate</em> &rarr; <em>CA certificate</em>, pick foxden-ca.crt. Then in
Firefox: Settings &rarr; About Firefox, tap the logo until Secret Settings appear, and turn on
<em>Use third party CA certificates</em>.</p>
<h2>iPhone and iPad</h2><p>Open this page in Safari, download foxden-ca.crt and allow the
profile. Install it under Settings &rarr; General &rarr; VPN &amp; Device Management, then
turn it on under Settings &rarr; General &rarr; About &rarr; <em>Certificate Trust
Settings</em>.</p>
<p>Then open <a href="{url}">{url}</a>: it should load without a warning.</p>
</body></html>
"""
