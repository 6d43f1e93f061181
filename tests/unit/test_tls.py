"""TLS set-up: start-up errors naming the flag, auto-TLS certificates, contexts that require client
certificates as etcd does, certificate reload without a restart, and the client certificate's CN.
Handshakes are real (asyncio server and client on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from petcd.config import TLSInfo
from petcd.security.certs import FlagNames, TLSSetupError, check_side
from petcd.security.contexts import ClientContext, ServerContext, Side, build_client_context
from petcd.security.identity import common_name, peer_allowed
from petcd.security.selfcert import effective, fixtures_dir, self_cert

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)
CLIENT = FlagNames.of("client")
PEER = FlagNames.of("peer")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class Issued:
    cert: Path
    key: Path


class PKI:
    """A CA that issues certificates into files."""

    def __init__(self, root: Path, name: str = "test-ca") -> None:
        self.root = root
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - DAY)
            .not_valid_after(NOW + 30 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_file = root / f"{name}.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        stem: str,
        cn: str,
        not_before: datetime.datetime = NOW - DAY,
        not_after: datetime.datetime = NOW + 9 * DAY,
    ) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        out = Issued(self.root / f"{stem}.pem", self.root / f"{stem}-key.pem")
        out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return out


@pytest.fixture
def pki(tmp_path: Path) -> PKI:
    return PKI(tmp_path)


def refused(tls: TLSInfo, flags: FlagNames = CLIENT) -> str:
    with pytest.raises(TLSSetupError) as info:
        check_side(tls, flags)
    return str(info.value)


# ---- start-up errors ------------------------------------------------------------------------------


def test_missing_files_name_the_flag(pki: PKI, tmp_path: Path) -> None:
    server = pki.issue("server", "server")
    gone = str(tmp_path / "nope.pem")
    assert refused(TLSInfo(cert_file=gone, key_file=str(server.key))) == (
        f"--cert-file: open {gone}: no such file or directory"
    )
    assert refused(TLSInfo(cert_file=str(server.cert), key_file=gone), PEER).startswith(
        "--peer-key-file: open"
    )
    message = refused(TLSInfo(cert_file=str(server.cert), key_file=str(server.key), trusted_ca_file=gone))
    assert message.startswith("--trusted-ca-file: open")
    assert "--key-file" in refused(TLSInfo(cert_file=str(server.cert)))


def test_expired_and_not_yet_valid_certificates(pki: PKI) -> None:
    old = pki.issue("old", "server", NOW - 10 * DAY, NOW - DAY)
    message = refused(TLSInfo(cert_file=str(old.cert), key_file=str(old.key)))
    assert message.startswith(f"--cert-file: certificate {old.cert} expired at")
    future = pki.issue("future", "server", NOW + DAY, NOW + 10 * DAY)
    assert "is not valid before" in refused(
        TLSInfo(cert_file=str(future.cert), key_file=str(future.key)), PEER
    )


def test_key_that_does_not_match_the_certificate(pki: PKI) -> None:
    a, b = pki.issue("a", "a"), pki.issue("b", "b")
    message = refused(TLSInfo(cert_file=str(a.cert), key_file=str(b.key)))
    assert message == f"--key-file {b.key} is not the private key of --cert-file {a.cert}"


def test_not_pem_and_client_cert_auth_without_ca(pki: PKI, tmp_path: Path) -> None:
    server = pki.issue("server", "server")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    assert refused(TLSInfo(cert_file=str(junk), key_file=str(server.key))) == (
        f"--cert-file: {junk} holds no PEM certificate"
    )
    assert refused(TLSInfo(cert_file=str(server.cert), key_file=str(server.key), client_cert_auth=True)) == (
        "--client-cert-auth needs --trusted-ca-file to verify client certificates"
    )
    with_ca = TLSInfo(cert_file=str(server.cert), key_file=str(server.key), trusted_ca_file=str(pki.ca_file))
    check_side(with_ca, CLIENT)


# ---- auto TLS ---------------------------------------------------------------------------------------


def test_auto_tls_generates_once_into_fixtures(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "member.etcd")
    urls = ["https://127.0.0.7:2380", "https://node-1.example:2380"]
    tls, self_signed = effective(TLSInfo(auto_tls=True), "peer", data_dir, urls, 1)
    assert self_signed
    assert Path(tls.cert_file) == fixtures_dir(data_dir, "peer") / "cert.pem"
    assert os.stat(tls.key_file).st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate(Path(tls.cert_file).read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.7")]
    assert sans.get_values_for_type(x509.DNSName) == ["node-1.example"]
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "etcd"
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usages  # peers present it as client certificate too
    check_side(tls, PEER)
    before = Path(tls.cert_file).read_bytes()
    again, _ = effective(TLSInfo(auto_tls=True), "peer", data_dir, urls, 1)
    assert Path(again.cert_file).read_bytes() == before  # a restart keeps its certificate


def test_auto_tls_yields_to_given_files(pki: PKI, tmp_path: Path) -> None:
    server = pki.issue("server", "server")
    given = TLSInfo(cert_file=str(server.cert), key_file=str(server.key), auto_tls=True)
    assert effective(given, "client", str(tmp_path / "d"), ["https://127.0.0.1:2379"], 1) == (given, False)
    assert not (tmp_path / "d").exists()
    with pytest.raises(ValueError):
        self_cert(tmp_path / "x", [], 0)


# ---- handshakes ---------------------------------------------------------------------------------------


@dataclass
class Handshake:
    ok: bool
    server_serial: int = 0
    client_cn: str = ""
    alpn: str | None = None
    error: str = ""


class Listener:
    """A TLS echo-less server recording each handshake's client certificate."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.client_cns: list[str] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Listener:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.client_cns.append(common_name(writer.get_extra_info("peercert")))
            writer.write(b"x")
            await writer.drain()
            writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=self.ctx.listener)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def dial(self, ctx: ssl.SSLContext) -> Handshake:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.port, ssl=ctx, server_hostname="127.0.0.1"), 10
            )
            # TLS 1.3 finishes the client's handshake before the server has checked its certificate:
            # only the server's byte proves the server accepted it.
            if await asyncio.wait_for(reader.read(1), 10) != b"x":
                writer.close()
                return Handshake(False, error="closed by the server")
        except (ssl.SSLError, ConnectionError, OSError) as exc:
            return Handshake(False, error=str(exc))
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True)
        serial = x509.load_der_x509_certificate(der).serial_number
        alpn = ssl_object.selected_alpn_protocol()
        writer.close()
        return Handshake(True, serial, alpn=alpn)


def client_side(pki: PKI, issued: Issued | None, ca: Path | None = None) -> Side:
    tls = TLSInfo(
        cert_file=str(issued.cert) if issued else "",
        key_file=str(issued.key) if issued else "",
        trusted_ca_file=str(ca or pki.ca_file),
    )
    return Side(tls, CLIENT)


def serial_of(issued: Issued) -> int:
    return x509.load_pem_x509_certificate(issued.cert.read_bytes()).serial_number


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


def test_trusted_ca_requires_client_certificates(pki: PKI, loop: asyncio.AbstractEventLoop) -> None:
    server = pki.issue("server", "server")
    ctx = ServerContext(
        Side(
            TLSInfo(cert_file=str(server.cert), key_file=str(server.key), trusted_ca_file=str(pki.ca_file)),
            CLIENT,
        )
    )
    alice = pki.issue("alice", "alice")
    stranger_ca = PKI(pki.root, "other-ca")
    mallory = stranger_ca.issue("mallory", "mallory")

    async def scenario() -> None:
        async with Listener(ctx) as listener:
            with_cert = await listener.dial(build_client_context(client_side(pki, alice)))
            assert with_cert.ok and with_cert.server_serial == serial_of(server)
            without = await listener.dial(build_client_context(client_side(pki, None)))
            assert not without.ok
            wrong_ca = await listener.dial(build_client_context(client_side(pki, mallory)))
            assert not wrong_ca.ok
            # The client refuses a server its CA did not sign.
            distrusting = await listener.dial(
                build_client_context(client_side(pki, alice, stranger_ca.ca_file))
            )
            assert not distrusting.ok
            assert listener.client_cns == ["alice"]

    loop.run_until_complete(scenario())


def test_without_ca_no_client_certificate_is_asked(pki: PKI, loop: asyncio.AbstractEventLoop) -> None:
    server = pki.issue("server", "server")
    ctx = ServerContext(Side(TLSInfo(cert_file=str(server.cert), key_file=str(server.key)), CLIENT))

    async def scenario() -> None:
        async with Listener(ctx) as listener:
            assert (await listener.dial(build_client_context(client_side(pki, None)))).ok
            assert listener.client_cns == [""]

    loop.run_until_complete(scenario())


def test_certificate_files_reload_without_restart(pki: PKI, loop: asyncio.AbstractEventLoop) -> None:
    first = pki.issue("server", "server")
    first_serial = serial_of(first)
    ctx = ServerContext(Side(TLSInfo(cert_file=str(first.cert), key_file=str(first.key)), CLIENT))
    dialer = ClientContext(client_side(pki, None))

    async def scenario() -> None:
        async with Listener(ctx) as listener:
            assert (await listener.dial(dialer.current())).server_serial == first_serial
            second = pki.issue("server", "server")  # rewrites the same two files
            assert serial_of(second) != first_serial
            assert (await listener.dial(dialer.current())).server_serial == serial_of(second)
            assert ctx.reloads == 1
            # A broken rewrite (key of another certificate) keeps serving the last good pair.
            other = pki.issue("other", "other")
            first.key.write_bytes(other.key.read_bytes())
            assert (await listener.dial(dialer.current())).server_serial == serial_of(second)
            assert ctx.reloads == 1

    loop.run_until_complete(scenario())


def test_alpn_prefers_http1_for_clients_that_offer_it(pki: PKI, loop: asyncio.AbstractEventLoop) -> None:
    server = pki.issue("server", "server")
    ctx = ServerContext(Side(TLSInfo(cert_file=str(server.cert), key_file=str(server.key)), CLIENT))

    async def scenario() -> None:
        async with Listener(ctx) as listener:
            grpc_like = await listener.dial(build_client_context(client_side(pki, None), alpn=["h2"]))
            assert grpc_like.alpn == "h2"
            curl_like = await listener.dial(
                build_client_context(client_side(pki, None), alpn=["h2", "http/1.1"])
            )
            assert curl_like.alpn == "http/1.1"

    loop.run_until_complete(scenario())


def test_self_signed_peers_do_not_verify_each_other(tmp_path: Path, loop: asyncio.AbstractEventLoop) -> None:
    urls = ["https://127.0.0.1:2380"]
    tls, self_signed = effective(TLSInfo(auto_tls=True), "peer", str(tmp_path / "a"), urls, 1)
    other, _ = effective(TLSInfo(auto_tls=True), "peer", str(tmp_path / "b"), urls, 1)
    ctx = ServerContext(Side(tls, PEER, self_signed=self_signed))

    async def scenario() -> None:
        async with Listener(ctx) as listener:
            assert (await listener.dial(build_client_context(Side(other, PEER, self_signed=True)))).ok

    loop.run_until_complete(scenario())


def test_peer_identity_rules() -> None:
    cert = {"subject": ((("commonName", "etcd-1"),),), "subjectAltName": (("DNS", "etcd-1.svc"),)}
    assert common_name(cert) == "etcd-1"
    assert common_name(None) == ""
    assert peer_allowed(cert, "", "")
    assert peer_allowed(cert, "etcd-1", "etcd-1.svc")
    assert not peer_allowed(cert, "etcd-2", "")
    assert not peer_allowed(cert, "", "etcd-2.svc")
