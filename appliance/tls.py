"""The household's own certificate authority and the server certificate it issues.

Phones refuse plain http and check the host name (pairing.md §9), so Foxden brings its own
HTTPS: a local CA (ECDSA P-256, made once, key 0600) that the user trusts once per device, and
a server certificate for ``<host>.local``, the host name, every LAN address and localhost.
The server certificate is re-issued when it nears expiry or when the set of names changes.

The CA carries X.509 name constraints (only .local / the host name / localhost and private
or loopback addresses), so a stolen CA key cannot impersonate public web sites to a device that
trusts it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .keys import write_secret_file

CA_DAYS = 3650
# Apple platforms refuse server certificates valid for more than 825 days even from a
# user-installed CA, and browsers cap publicly trusted ones at 398; stay under both.
CERT_DAYS = 397
RENEW_BEFORE = dt.timedelta(days=30)
PRIVATE_NETS = [ipaddress.ip_network(n) for n in (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
    "100.64.0.0/10", "::1/128", "fc00::/7", "fe80::/10",
)]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TLSError(Exception):
    """A certificate or key that cannot be used; the message says which."""


@dataclass(frozen=True)
class CertificateAuthority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the DER certificate, as the colon-separated hex users compare."""
        return fingerprint(self.cert)


def fingerprint(cert: x509.Certificate) -> str:
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    write_secret_file(path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise TLSError(f"{path} is not a PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TLSError(f"{path} is not an EC key")
    return key


def ensure_ca(directory: Path, host_label: str, *, extra_dns: tuple[str, ...] = ()
              ) -> CertificateAuthority:
    cert_path, key_path = directory / "ca.pem", directory / "ca-key.pem"
    if cert_path.exists() and key_path.exists():
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except ValueError as exc:
            raise TLSError(f"{cert_path} is not a PEM certificate") from exc
        return CertificateAuthority(cert, _load_key(key_path), cert_path)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Foxden"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"Foxden local CA ({host_label})"[:64]),
    ])
    permitted: list[x509.GeneralName] = [
        x509.DNSName("local"), x509.DNSName("localhost"), x509.DNSName(host_label.lower()),
        *(x509.DNSName(d.lower()) for d in extra_dns),
        *(x509.IPAddress(net) for net in PRIVATE_NETS),
    ]
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True,
            content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.NameConstraints(permitted_subtrees=permitted,
                                            excluded_subtrees=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    tmp = cert_path.with_name(f".ca.{secrets.token_hex(4)}.tmp")
    tmp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tmp.replace(cert_path)
    return CertificateAuthority(cert, key, cert_path)


def cert_names(cert: x509.Certificate) -> tuple[set[str], set[IPAddress]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    return ({d.lower() for d in san.get_values_for_type(x509.DNSName)},
            set(san.get_values_for_type(x509.IPAddress)))


def needs_issue(cert_path: Path, ca: CertificateAuthority, dns: set[str],
                ips: set[IPAddress], now: dt.datetime | None = None) -> str | None:
    """Why the server certificate must be (re)issued, or None if it is fine."""
    if not cert_path.exists():
        return "no certificate yet"
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError:
        return "certificate unreadable"
    if cert.issuer != ca.cert.subject:
        return "issued by another CA"
    if (now or _now()) + RENEW_BEFORE >= cert.not_valid_after_utc:
        return "expires soon"
    have_dns, have_ips = cert_names(cert)
    if have_dns != {d.lower() for d in dns} or have_ips != ips:
        return "names or addresses changed"
    return None


def issue_server_cert(ca: CertificateAuthority, directory: Path, dns: set[str],
                      ips: set[IPAddress]) -> Path:
    """Write server.pem (key, leaf, CA) with mode 0600 and return its path."""
    if not dns and not ips:
        raise TLSError("a server certificate needs at least one name or address")
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    first = sorted(dns)[0] if dns else str(sorted(ips, key=str)[0])
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in sorted(dns)]
    sans += [x509.IPAddress(ip) for ip in sorted(ips, key=lambda a: (a.version, int(a)))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first[:64])]))
        .issuer_name(ca.cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=False, crl_sign=False,
            content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    # Key and chain in one 0600 file, replaced atomically: a crash can never leave a
    # certificate beside a key that does not match it.
    path = directory / "server.pem"
    write_secret_file(path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM)
        + ca.cert.public_bytes(serialization.Encoding.PEM))
    return path


def is_lan_address(ip: IPAddress) -> bool:
    return any(ip in net for net in PRIVATE_NETS)
