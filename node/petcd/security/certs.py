"""Loading and checking certificate files, with errors that name the flag to fix.

etcd fails at start on a missing file, a key that does not belong to the certificate, or an
unparsable CA; petcd also refuses an expired (or not yet valid) certificate, which etcd only
reports at the first handshake, far from the cause.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from petcd.config import ConfigError, TLSInfo


class TLSSetupError(ConfigError):
    """A TLS setting petcd cannot serve with; the message names the flag."""


@dataclass(frozen=True, slots=True)
class FlagNames:
    """The flags of one side, for messages: etcd's client flags or their --peer-* twins."""

    cert: str
    key: str
    ca: str
    auto: str

    @classmethod
    def of(cls, side: str) -> FlagNames:
        p = "peer-" if side == "peer" else ""
        return cls(f"--{p}cert-file", f"--{p}key-file", f"--{p}trusted-ca-file", f"--{p}auto-tls")


def _read(path: str, flag: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise TLSSetupError(f"{flag}: open {path}: no such file or directory") from None
    except OSError as exc:
        raise TLSSetupError(f"{flag}: cannot read {path}: {exc.strerror}") from None


def load_certificates(path: str, flag: str) -> list[x509.Certificate]:
    data = _read(path, flag)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        certs = []
    if not certs:
        raise TLSSetupError(f"{flag}: {path} holds no PEM certificate")
    return certs


def load_private_key(path: str, flag: str) -> PrivateKeyTypes:
    data = _read(path, flag)
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise TLSSetupError(f"{flag}: {path} holds no unencrypted PEM private key ({exc})") from None


def _public_bytes(key: object) -> bytes:
    public = key.public_key()  # type: ignore[attr-defined]
    return bytes(
        public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def check_validity(cert: x509.Certificate, path: str, flag: str, now: datetime.datetime) -> None:
    if now < cert.not_valid_before_utc:
        raise TLSSetupError(
            f"{flag}: certificate {path} is not valid before {cert.not_valid_before_utc.isoformat()}"
        )
    if now > cert.not_valid_after_utc:
        raise TLSSetupError(f"{flag}: certificate {path} expired at {cert.not_valid_after_utc.isoformat()}")


def check_side(tls: TLSInfo, flags: FlagNames, now: datetime.datetime | None = None) -> None:
    """Everything that can be known about one side's files before serving; raises TLSSetupError."""
    now = now or datetime.datetime.now(datetime.UTC)
    if bool(tls.cert_file) != bool(tls.key_file):
        given, missing = (flags.cert, flags.key) if tls.cert_file else (flags.key, flags.cert)
        raise TLSSetupError(f"{given} is set but {missing} is not: both are needed")
    if tls.cert_file:
        leaf = load_certificates(tls.cert_file, flags.cert)[0]
        check_validity(leaf, tls.cert_file, flags.cert, now)
        key = load_private_key(tls.key_file, flags.key)
        if _public_bytes(key) != _public_bytes(leaf):
            raise TLSSetupError(
                f"{flags.key} {tls.key_file} is not the private key of {flags.cert} {tls.cert_file}"
            )
    if tls.trusted_ca_file:
        for ca in load_certificates(tls.trusted_ca_file, flags.ca):
            check_validity(ca, tls.trusted_ca_file, flags.ca, now)
    if tls.client_cert_auth and not tls.trusted_ca_file and not tls.auto_tls:
        side = "peer-" if flags.cert.startswith("--peer") else ""
        raise TLSSetupError(f"--{side}client-cert-auth needs {flags.ca} to verify client certificates")
