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
            c.execute("INSERT INTO storage_collections (id, name) VALUES (99, 'history')")
            c.executemany(
                "INSERT INTO storage_bso (uid, collection_id, id, modified, expiry, "
                "payload_size, payload) VALUES (5, 99, ?, 10, 20, 1, 'x')",
                [(f"b{i}",) for i in range(12_000)])

        await runtime.db.write(expired)
        counts = await jobs.purge(jobs.JobContext(runtime=runtime, plan=None, hyper=None,
                                                  ca=None, advertiser=None,
                                                  announcement=None))
        assert counts["server.storage.store"] == 12_000
        left = await runtime.db.read(lambda c: c.execute(
            "SELECT count(*) FROM storage_bso").fetchone()[0])
        assert left == 0
    finally:
        runtime.db.close()
