"""The verifier's X.509 identity for signed OpenID4VP requests (client identifier
prefix ``x509_san_dns``): a P-256 key and its certificate (chain), whose leaf names the
verifier's DNS name as a ``dNSName`` subject alternative name.

Configured with ``SHOMEI_VERIFIER_X509_CERT`` / ``SHOMEI_VERIFIER_X509_KEY`` (PEM
files; the key unencrypted, readable by the service only); the demo makes a
self-signed one for its host name (:func:`write_self_signed`). Pure: no Flask.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from credentials.errors import ShomeiError


@dataclass(frozen=True, kw_only=True, repr=False)
class X509Identity:
    """The signing key, the certificate chain (leaf first, DER) and the DNS name."""

    key: ec.EllipticCurvePrivateKey
    chain: tuple[bytes, ...]
    dns_name: str

    def __repr__(self) -> str:
        return f"X509Identity(dns_name={self.dns_name!r})"

    @property
    def client_id(self) -> str:
        """The full client identifier, prefix included: ``x509_san_dns:<name>``."""
        return f"x509_san_dns:{self.dns_name}"

    @property
    def x5c(self) -> list[str]:
        """The chain as the JOSE ``x5c`` header: standard base64 DER, leaf first."""
        return [base64.b64encode(der).decode("ascii") for der in self.chain]

    @classmethod
    def load(
        cls, cert_path: str | os.PathLike[str], key_path: str | os.PathLike[str]
    ) -> X509Identity:
        """Read the PEM certificate chain and the PEM P-256 key. Raises
        :class:`ShomeiError` for unreadable files, another key type, a key that is not
        the leaf's, or a leaf without a DNS name."""
        try:
            certs = x509.load_pem_x509_certificates(Path(cert_path).read_bytes())
            key = serialization.load_pem_private_key(Path(key_path).read_bytes(), None)
        except (OSError, ValueError, TypeError) as e:
            raise ShomeiError(
                f"検証者の証明書・鍵を読めません: {e}",
                f"cannot read the verifier certificate/key: {e}",
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ShomeiError("検証者の鍵は P-256 にしてください", "the verifier key must be P-256")
        leaf = certs[0]
        if leaf.public_key() != key.public_key():
            raise ShomeiError(
                "検証者の鍵が証明書と一致しません",
                "the verifier key does not match its certificate",
            )
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            names = san.value.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            names = []
        if not names:
            raise ShomeiError(
                "検証者の証明書に DNS 名（SAN）がありません",
                "the verifier certificate has no DNS subject alternative name",
            )
        der = tuple(c.public_bytes(serialization.Encoding.DER) for c in certs)
        return cls(key=key, chain=der, dns_name=names[0])


def self_signed(dns_name: str, *, now: dt.datetime, days: int = 365) -> tuple[bytes, bytes]:
    """A new P-256 key and a self-signed certificate for ``dns_name``: (cert PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write_self_signed(folder: Path, dns_name: str, *, now: dt.datetime) -> tuple[Path, Path]:
    """Make (once) ``verifier-x509.pem`` and ``verifier-x509.key`` for ``dns_name`` in
    ``folder``, both 0600; an existing pair for another name is replaced. Returns the
    paths (certificate, key)."""
    cert_path, key_path = folder / "verifier-x509.pem", folder / "verifier-x509.key"
    if cert_path.exists() and key_path.exists():
        try:
            if X509Identity.load(cert_path, key_path).dns_name == dns_name:
                return cert_path, key_path
        except ShomeiError:
            pass
    cert_pem, key_pem = self_signed(dns_name, now=now)
    for path, data in ((key_path, key_pem), (cert_path, cert_pem)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(path, 0o600)
    return cert_path, key_path
