"""Background jobs: certificate renewal into the live SSL context, and the purge round."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path
from types import SimpleNamespace

from appliance import jobs, tls
from appliance.config import Config
from appliance.paths import Paths
from appliance.runtime import build

V4, V6 = ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")


async def test_renewal_reissues_and_reloads(tmp_path: Path) -> None:
    paths = Paths.resolve(str(tmp_path / "data"), str(tmp_path / "cfg"))
    ca = tls.ensure_ca(paths.tls_dir, "box")
    path = tls.issue_server_cert(ca, paths.tls_dir, {"box.local"}, {V4})
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(path)
    plan = SimpleNamespace(tls=True, own_cert=None, mdns=False, dns={"box.local"},
                           ips={V4, V6})
    ctx = jobs.JobContext(runtime=SimpleNamespace(paths=paths), plan=plan,
                          hyper=SimpleNamespace(context=context), ca=ca, advertiser=None,
                          announcement=None)
    assert await jobs.renew_certificate(ctx) is True  # ::1 was missing
    from cryptography import x509

    _, ips = tls.cert_names(x509.load_pem_x509_certificate(path.read_bytes()))
    assert ips == {V4, V6}
    assert await jobs.renew_certificate(ctx) is False  # nothing to do now


async def test_purge_round_is_bounded_and_counts(tmp_path: Path) -> None:
    paths = Paths.resolve(str(tmp_path / "data"), str(tmp_path / "cfg"))
    runtime = build(paths, Config(), "http://127.0.0.1:1")
    try:
        def expired(c):  # type: ignore[no-untyped-def]
            c.execute("INSERT INTO accounts (uid, email, normalized_email, auth_salt, "
                      "verify_hash, wrap_wrap_kb, ka, verifier_set_at, keys_changed_at, "
                      "created_at) VALUES ('ab', 'a@b.c', 'a@b.c', x'00', x'00', x'00', "
                      "x'00', 1, 1, 1)")
            c.executemany(
                "INSERT INTO fxa_tokens (id, kind, uid, hawk_key, created_at, last_access, "
                "expires_at) VALUES (?, 'keyFetchToken', 'ab', x'00', 1, 1, 2)",
                [(f"t{i}",) for i in range(12_000)])
            c.execute("INSERT INTO fxa_tokens (id, kind, uid, hawk_key, created_at, "
                      "last_access) VALUES ('live', 'sessionToken', 'ab', x'00', 1, 1)")

        await runtime.db.write(expired)
        counts = await jobs.purge(jobs.JobContext(runtime=runtime, plan=None, hyper=None,
                                                  ca=None, advertiser=None,
                                                  announcement=None))
        assert counts["server.accounts.tokens"] == 12_000  # in chunks of 5,000
        left = await runtime.db.read(lambda c: c.execute(
            "SELECT id FROM fxa_tokens").fetchall())
        assert left == [("live",)]
    finally:
        runtime.db.close()
