"""--auto-tls / --peer-auto-tls: a self-signed certificate in <data-dir>/fixtures/{client,peer}, as
etcd's transport.SelfCert makes it (ECDSA P-521, organisation "etcd", the listen URLs' hosts as
SANs); an existing pair there is reused, so a restart keeps its certificate."""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from petcd.config import TLSInfo

CERT_NAME = "cert.pem"
KEY_NAME = "key.pem"


def fixtures_dir(data_dir: str | os.PathLike[str], side: str) -> Path:
    return Path(data_dir) / "fixtures" / side


def hosts_of(urls: tuple[str, ...] | list[str]) -> list[str]:
    return [urlsplit(u).hostname or "" for u in urls if urlsplit(u).hostname]


def _san(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def self_cert(
    directory: Path, hosts: list[str], validity_years: int, client_auth: bool = False
) -> tuple[Path, Path]:
    """The (cert, key) paths in `directory`, generated unless both files exist."""
    if validity_years <= 0:
        raise ValueError("selfSignedCertValidity is invalid,it should be greater than 0")
    cert_path, key_path = (directory / CERT_NAME).resolve(), (directory / KEY_NAME).resolve()
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = ec.generate_private_key(ec.SECP521R1())
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "etcd")])
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client_auth else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(secrets.randbits(127) + 1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365 * validity_years))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=True,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName(_san(hosts)), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def effective(
    tls: TLSInfo, side: str, data_dir: str, urls: tuple[str, ...] | list[str], validity_years: int
) -> tuple[TLSInfo, bool]:
    """One side's TLS settings once --auto-tls is resolved, and whether they are self-signed.
    As etcd: auto TLS is used only when no cert/key files are given."""
    if not tls.auto_tls or tls.cert_file or tls.key_file:
        return tls, False
    cert, key = self_cert(fixtures_dir(data_dir, side), hosts_of(urls), validity_years, side == "peer")
    return TLSInfo(
        cert_file=str(cert),
        key_file=str(key),
        trusted_ca_file=tls.trusted_ca_file,
        client_cert_auth=tls.client_cert_auth,
        crl_file=tls.crl_file,
        auto_tls=True,
        allowed_cn=tls.allowed_cn,
        allowed_hostname=tls.allowed_hostname,
    ), True
