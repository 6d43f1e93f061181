"""What the CLI and the server shell call to set TLS up from the Config.

Served today: TLS on the client port (https:// in --listen-client-urls, --cert-file, --key-file,
--trusted-ca-file, --client-cert-auth with the certificate's CN as auth user, --auto-tls) of a
single-member cluster. Refused with a clear message: peer TLS, https metrics URLs, and client TLS on
several members (a follower forwards lease keep-alives to the leader's client URL over plaintext
gRPC, which a TLS client port would not answer).
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from petcd.config import Config
from petcd.security.certs import FlagNames, check_side
from petcd.security.ciphers import openssl_cipher_list
from petcd.security.contexts import ClientContext, ServerContext, Side
from petcd.security.identity import ClientIdentities
from petcd.security.selfcert import effective

TLS_SCHEMES = ("https", "unixs")


def _is_tls(url: str) -> bool:
    return urlsplit(url).scheme in TLS_SCHEMES


def unserved(cfg: Config) -> list[str]:
    """The TLS settings petcd parses but does not serve end to end yet (refused at start)."""
    found: list[str] = [u for u in (*cfg.listen_peer_urls, *cfg.initial_advertise_peer_urls) if _is_tls(u)]
    found += [u for u in cfg.listen_metrics_urls if _is_tls(u)]
    peer = cfg.peer_tls
    if peer.cert_file or peer.key_file:
        found.append("--peer-cert-file/--peer-key-file")
    if peer.auto_tls:
        found.append("--peer-auto-tls")
    client_tls = any(_is_tls(u) for u in cfg.listen_client_urls)
    several = len(cfg.initial_cluster_members) > 1 or cfg.initial_cluster_state == "existing"
    if client_tls and (several or cfg.discovery or cfg.discovery_srv):
        found.append("client TLS on a cluster of several members")
    return found


def check_files(cfg: Config) -> None:
    """The certificate files of each side, before anything is written (TLSSetupError names the flag)."""
    openssl_cipher_list(cfg.cipher_suites)
    if any(_is_tls(u) for u in cfg.listen_client_urls) and not cfg.client_tls.auto_tls:
        check_side(cfg.client_tls, FlagNames.of("client"))


@dataclass
class ClientPortTLS:
    """The client port's TLS: one context for every https:// listen URL, and the CNs of clients."""

    context: ServerContext | None
    client_cert_auth: bool
    identities: ClientIdentities = field(default_factory=lambda: ClientIdentities(str(os.getpid())))

    def for_url(self, url: str) -> ssl.SSLContext | None:
        return self.context.listener if self.context is not None and _is_tls(url) else None


def _side(cfg: Config, name: str, urls: tuple[str, ...] | list[str]) -> Side:
    """One side's settings with --auto-tls resolved (which may write the self-signed pair)."""
    given = cfg.client_tls if name == "client" else cfg.peer_tls
    validity = cfg.self_signed_cert_validity
    tls, self_signed = effective(given, name, cfg.effective_data_dir, list(urls), validity)
    return Side(
        tls,
        FlagNames.of(name),
        self_signed=self_signed,
        min_version=cfg.tls_min_version,
        max_version=cfg.tls_max_version,
        cipher_suites=tuple(cfg.cipher_suites),
    )


def client_port_tls(cfg: Config) -> ClientPortTLS:
    if not any(_is_tls(u) for u in cfg.listen_client_urls):
        return ClientPortTLS(None, False)
    side = _side(cfg, "client", cfg.listen_client_urls)
    return ClientPortTLS(ServerContext(side), side.tls.client_cert_auth and not side.self_signed)


@dataclass
class PeerTLS:
    """The peer port's TLS, for the transport: the listener's context, the dialer's (one per new
    connection: `dialer.current()`), and the identity rules for incoming peers
    (`identity.peer_allowed(peercert, allowed_cn, allowed_hostname)` after the handshake)."""

    listener: ServerContext
    dialer: ClientContext
    allowed_cn: str
    allowed_hostname: str

    def for_url(self, url: str) -> ssl.SSLContext | None:
        """The dialer's context for a peer URL (None for http://)."""
        return self.dialer.current() if _is_tls(url) else None


def peer_tls(cfg: Config) -> PeerTLS | None:
    """None unless the peer side has TLS settings (files or --peer-auto-tls)."""
    if cfg.peer_tls.empty:
        return None
    side = _side(cfg, "peer", cfg.listen_peer_urls)
    return PeerTLS(ServerContext(side), ClientContext(side), side.tls.allowed_cn, side.tls.allowed_hostname)
