"""SSL contexts for the client and peer listeners and the peer dialer, from etcd's TLS flags.

As etcd: a trusted CA file (or --client-cert-auth) makes a listener require and verify client
certificates; a dialer with a self-signed (auto TLS) certificate does not verify the server.
Certificates are re-read when their files change, without a restart: a listener's context swaps in
a fresh one at each handshake whose files changed (through the SNI callback, which OpenSSL runs for
every ClientHello), a dialer asks `current()` for each new connection.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from petcd.config import TLSInfo
from petcd.security.certs import FlagNames, TLSSetupError, check_side
from petcd.security.ciphers import openssl_cipher_list

log = logging.getLogger("petcd.security")

TLS_VERSIONS = {"": None, "TLS1.2": ssl.TLSVersion.TLSv1_2, "TLS1.3": ssl.TLSVersion.TLSv1_3}
# The server prefers HTTP/1.1 for clients that offer both (curl, browsers): the client port serves
# /health, /metrics and /v2 over HTTP/1.1 only. gRPC clients offer only h2 and get it.
SERVER_ALPN = ["http/1.1", "h2"]


@dataclass(frozen=True, slots=True)
class Side:
    """One side's TLS settings as the contexts need them."""

    tls: TLSInfo
    flags: FlagNames
    self_signed: bool = False
    min_version: str = "TLS1.2"
    max_version: str = ""
    cipher_suites: tuple[str, ...] = ()

    def files(self) -> tuple[str, ...]:
        return tuple(f for f in (self.tls.cert_file, self.tls.key_file, self.tls.trusted_ca_file) if f)


def _versions(ctx: ssl.SSLContext, side: Side) -> None:
    low, high = TLS_VERSIONS.get(side.min_version), TLS_VERSIONS.get(side.max_version)
    if side.min_version not in TLS_VERSIONS or side.max_version not in TLS_VERSIONS:
        raise TLSSetupError(
            f"unknown TLS version in --tls-min-version/--tls-max-version: "
            f"{side.min_version!r}/{side.max_version!r}"
        )
    if low is not None:
        ctx.minimum_version = low
    if high is not None:
        ctx.maximum_version = high
    ciphers = openssl_cipher_list(side.cipher_suites)
    if ciphers:
        try:
            ctx.set_ciphers(ciphers)
        except ssl.SSLError:
            raise TLSSetupError(
                f"--cipher-suites: none of {','.join(side.cipher_suites)} is usable"
            ) from None


def _load_chain(ctx: ssl.SSLContext, side: Side) -> None:
    try:
        ctx.load_cert_chain(side.tls.cert_file, side.tls.key_file)
    except (ssl.SSLError, OSError) as exc:
        raise TLSSetupError(
            f"{side.flags.cert}/{side.flags.key}: cannot load "
            f"{side.tls.cert_file} with {side.tls.key_file}: {exc}"
        ) from None


def _load_ca(ctx: ssl.SSLContext, side: Side) -> None:
    try:
        ctx.load_verify_locations(cafile=side.tls.trusted_ca_file)
    except (ssl.SSLError, OSError) as exc:
        raise TLSSetupError(f"{side.flags.ca}: cannot load {side.tls.trusted_ca_file}: {exc}") from None


def build_server_context(side: Side) -> ssl.SSLContext:
    check_side(side.tls, side.flags)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _versions(ctx, side)
    _load_chain(ctx, side)
    if side.tls.trusted_ca_file:
        _load_ca(ctx, side)
    require = bool(side.tls.trusted_ca_file or side.tls.client_cert_auth) and not side.self_signed
    ctx.verify_mode = ssl.CERT_REQUIRED if require else ssl.CERT_NONE
    ctx.set_alpn_protocols(SERVER_ALPN)
    return ctx


def build_client_context(side: Side, alpn: Sequence[str] = ()) -> ssl.SSLContext:
    """A dialer's context: presents the side's certificate (peers authenticate each other with it)
    and verifies the server against the trusted CA, or the system's when none is given."""
    check_side(side.tls, side.flags)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _versions(ctx, side)
    if side.tls.cert_file:
        _load_chain(ctx, side)
    if side.self_signed:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif side.tls.trusted_ca_file:
        _load_ca(ctx, side)
    else:
        ctx.load_default_certs()
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def _stamp(files: Sequence[str]) -> tuple[tuple[int, int], ...]:
    out = []
    for f in files:
        try:
            st = os.stat(f)
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((0, 0))
    return tuple(out)


class Reloading:
    """A context rebuilt when its files change. A rebuild that fails (a file half written, a key
    that does not match yet) keeps the previous context and is logged; the next use tries again."""

    def __init__(self, build: Callable[[], ssl.SSLContext], files: Sequence[str]) -> None:
        self._build = build
        self._files = tuple(files)
        self._stamp = _stamp(self._files)
        self._current = build()
        self.reloads = 0

    def current(self) -> ssl.SSLContext:
        stamp = _stamp(self._files)
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._current = self._build()
                self.reloads += 1
                log.info("reloaded TLS certificates files=%s", ",".join(self._files))
            except TLSSetupError as exc:
                log.warning("TLS certificates changed but cannot be loaded, keeping the old ones: %s", exc)
        return self._current


class ServerContext(Reloading):
    """A listener's context: pass `listener` to the server; each handshake uses `current()`."""

    def __init__(self, side: Side) -> None:
        super().__init__(lambda: build_server_context(side), side.files())
        self.listener = build_server_context(side)
        self.listener.sni_callback = self._switch

    def _switch(
        self, conn: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> None:
        fresh = self.current()
        if fresh is not conn.context:
            conn.context = fresh


class ClientContext(Reloading):
    """A dialer's context: call `current()` for each new connection."""

    def __init__(self, side: Side, alpn: Sequence[str] = ()) -> None:
        super().__init__(lambda: build_client_context(side, alpn), side.files())
