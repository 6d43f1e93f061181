"""TLS from a whole Config, as the CLI and the server shell take it: what is refused until served,
the client port's context with --auto-tls, and the peer side's listener/dialer pair."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from petcd import config
from petcd.security import setup
from petcd.security.certs import TLSSetupError


def load(tmp_path: Path, *flags: str) -> config.Config:
    loaded = config.load(["--data-dir", str(tmp_path / "d"), *flags], {})
    assert loaded.config is not None
    return loaded.config


HTTPS_CLIENT = (
    "--listen-client-urls",
    "https://127.0.0.1:0",
    "--advertise-client-urls",
    "https://127.0.0.1:0",
)


def test_what_is_refused_until_served(tmp_path: Path) -> None:
    assert setup.unserved(load(tmp_path, *HTTPS_CLIENT, "--auto-tls")) == []
    assert setup.unserved(load(tmp_path, "--peer-auto-tls")) == ["--peer-auto-tls"]
    several = load(
        tmp_path,
        *HTTPS_CLIENT,
        "--auto-tls",
        "--initial-cluster",
        "default=http://localhost:2380,b=http://127.0.0.2:2380",
    )
    assert setup.unserved(several) == ["client TLS on a cluster of several members"]
    metrics = load(tmp_path, "--listen-metrics-urls", "https://127.0.0.1:2381")
    assert setup.unserved(metrics) == ["https://127.0.0.1:2381"]


def test_start_up_check_names_the_flag(tmp_path: Path) -> None:
    cfg = load(
        tmp_path, *HTTPS_CLIENT, "--cert-file", str(tmp_path / "c.pem"), "--key-file", str(tmp_path / "k.pem")
    )
    with pytest.raises(TLSSetupError, match=r"^--cert-file: open .*c\.pem: no such file or directory$"):
        setup.check_files(cfg)
    setup.check_files(load(tmp_path, *HTTPS_CLIENT, "--auto-tls"))  # nothing to check before generating


def test_client_port_tls(tmp_path: Path) -> None:
    plain = setup.client_port_tls(load(tmp_path))
    assert plain.context is None and plain.for_url("http://127.0.0.1:2379") is None
    auto = setup.client_port_tls(load(tmp_path, *HTTPS_CLIENT, "--auto-tls", "--client-cert-auth"))
    assert auto.context is not None
    assert auto.for_url("https://127.0.0.1:2379") is auto.context.listener
    assert auto.for_url("http://127.0.0.1:2379") is None
    assert not auto.client_cert_auth  # self-signed: etcd does not verify clients either
    assert (tmp_path / "d" / "fixtures" / "client" / "cert.pem").exists()


def test_peer_auto_tls_pair_handshakes(tmp_path: Path) -> None:
    assert setup.peer_tls(load(tmp_path)) is None
    peer = setup.peer_tls(load(tmp_path, "--peer-auto-tls", "--listen-peer-urls", "https://127.0.0.1:2380"))
    assert peer is not None
    assert peer.for_url("http://127.0.0.1:2380") is None

    async def handshake() -> bytes:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"ok")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=peer.listener.listener)
        port = server.sockets[0].getsockname()[1]
        try:
            ctx = peer.for_url(f"https://127.0.0.1:{port}")
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
            data = await asyncio.wait_for(reader.read(2), 10)
            writer.close()
            return data
        finally:
            server.close()
            await server.wait_closed()

    assert asyncio.run(handshake()) == b"ok"


def test_cipher_suites_take_gos_names(tmp_path: Path) -> None:
    with pytest.raises(TLSSetupError, match=r'^unexpected TLS cipher suite "ECDHE-RSA-AES128-SHA"$'):
        setup.check_files(load(tmp_path, "--cipher-suites", "ECDHE-RSA-AES128-SHA"))
    suites = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_AES_128_GCM_SHA256"
    cfg = load(
        tmp_path, *HTTPS_CLIENT, "--auto-tls", "--cipher-suites", suites, "--tls-max-version", "TLS1.2"
    )
    setup.check_files(cfg)
    ctx = setup.client_port_tls(cfg).for_url("https://127.0.0.1:2379")
    assert ctx is not None
    tls12 = [c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 == ["ECDHE-ECDSA-AES128-GCM-SHA256"]
