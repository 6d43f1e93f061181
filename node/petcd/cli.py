"""The `petcd` command: etcd's command line in, a running member out.

    petcd [flags]            start a member (flags, ETCD_* variables or --config-file, as etcd)
    petcd --version          versions, laid out like `etcd --version`
    petcd -h | --help        the flags
    petcd <command> ...      subcommands (SUBCOMMANDS): `petcd snapshot save|status|restore`

A refused start prints one line on stderr and exits 1 (2 for a flag the parser rejects, as etcd),
before anything touches the data directory. The server is imported only to run it, so `--help` and
`--version` work without it.
"""

from __future__ import annotations

import asyncio
import errno
import importlib
import inspect
import os
import platform
import socket
import sys
import urllib.parse
from collections.abc import Callable, Mapping, Sequence

from petcd import __version__, config
from petcd.log import configure, get_logger

ETCD_API_VERSION = "3.5"

# Subcommands: `petcd <name> args...` -> handler(args, environ) -> exit status.
Subcommand = Callable[[Sequence[str], Mapping[str, str]], int]
SUBCOMMANDS: dict[str, Subcommand] = {}


def _snapshot_command(args: Sequence[str], environ: Mapping[str, str]) -> int:
    """`petcd snapshot save|status|restore` (imported on use: it needs the storage and gRPC)."""
    command: Subcommand = importlib.import_module("petcd.snapshot.command").main
    return command(args, environ)


SUBCOMMANDS["snapshot"] = _snapshot_command

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def version_text() -> str:
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return (f"petcd Version: {__version__}\n"
            f"etcd API Version: {ETCD_API_VERSION}\n"
            "Git SHA: Not provided\n"
            f"Python Version: {platform.python_version()}\n"
            f"Python OS/Arch: {sys.platform}/{machine}\n")


def _refuse(message: str, status: int) -> int:
    print(f"petcd: {message}", file=sys.stderr)
    return status


def _refuse_flags(reason: str) -> int:
    """etcd's wording for a configuration it will not start with."""
    return _refuse(f"error verifying flags, {reason}. See 'petcd --help'.", EXIT_REFUSED)


def unserved_settings(cfg: config.Config) -> list[str]:
    """Settings petcd parses and validates but cannot serve yet (peer TLS): starting would mislead."""
    from petcd.security import setup  # TLS is the security package's to define

    return setup.unserved(cfg)


class ListenError(Exception):
    """A listen URL that cannot be bound; the text is Go's (`listen tcp <addr>: bind: <reason>`), then
    for a port in use the fix."""


def _bind_all(url: str, flag: str, held: list[socket.socket]) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return
    host, port = parts.hostname or "", parts.port or 0
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"listen tcp {host}:{port}: {exc.strerror or exc}") from None
    for family, kind, proto, _, address in addresses:
        sock = socket.socket(family, kind, proto)
        held.append(sock)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the real listeners do
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind(address)
            sock.listen()
        except OSError as exc:
            ip, bound_port = str(address[0]), int(address[1])
            shown = f"[{ip}]" if family == socket.AF_INET6 else ip
            reason = (exc.strerror or str(exc)).lower()
            fix = f"; stop the other process or choose another port with {flag}" \
                if exc.errno == errno.EADDRINUSE else ""
            raise ListenError(f"listen tcp {shown}:{bound_port}: bind: {reason}{fix}") from None


def check_listen_urls(cfg: config.Config) -> None:
    """Bind every --listen-*-urls address once, all at the same time, then release them: a port in use
    (or listed twice) is refused here, before the data directory exists, as etcd binds its listeners
    before creating it. Go's error text first, then the fix naming the flag that holds the port."""
    held: list[socket.socket] = []
    try:
        for flag, urls in (("--listen-peer-urls", cfg.listen_peer_urls),
                           ("--listen-client-urls", cfg.listen_client_urls),
                           ("--listen-metrics-urls", cfg.listen_metrics_urls)):
            for url in urls:
                _bind_all(url, flag, held)
    finally:
        for sock in held:
            sock.close()


def has_data(cfg: config.Config) -> bool:
    """Whether this member was started before (its WAL has segments, the server's own test): then etcd
    ignores the bootstrap settings."""
    from petcd.storage import wal  # the WAL's file naming is the storage's to define

    return wal.exists(cfg.wal_path)


def check_startable(cfg: config.Config) -> None:
    """The checks that need the disk (read-only) or that petcd adds; ConfigError when refused."""
    unserved = unserved_settings(cfg)
    if unserved:
        raise config.ConfigError(f"TLS is not supported by this petcd version yet ({', '.join(unserved)})")
    from petcd.security import setup

    setup.check_files(cfg)
    if cfg.listen_client_http_urls:
        raise config.ConfigError("--listen-client-http-urls is not supported by this petcd version yet; "
                                 "--listen-client-urls serves HTTP and gRPC on one port")
    if not has_data(cfg) and not cfg.discovery_srv:
        cfg.verify_bootstrap()


def run_server(cfg: config.Config) -> int:
    """Hand over to the server shell; it owns the event loop, signals and readiness."""
    # Imported here (and by name: its signature belongs to the server shell, sync or async).
    server = importlib.import_module("petcd.server")
    run = getattr(server, "run", None)
    if not callable(run):  # the package may keep run() in its submodule of the same name
        run = importlib.import_module("petcd.server.run").run
    result = run(cfg)
    if inspect.isawaitable(result):
        result = asyncio.run(_await(result))
    return result if isinstance(result, int) else EXIT_OK


async def _await(awaitable: object) -> object:
    assert inspect.isawaitable(awaitable)
    return await awaitable


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if environ is None else environ
    if args and args[0] in SUBCOMMANDS:
        return SUBCOMMANDS[args[0]](args[1:], env)
    try:
        loaded = config.load(args, env)
    except config.UsageError as exc:
        return _refuse(f"{exc}. See 'petcd --help'.", EXIT_USAGE)
    except config.ConfigError as exc:
        return _refuse_flags(str(exc))
    except Exception as exc:  # a defect in petcd's own checks: still one line, never a traceback
        return _refuse_flags(f"{type(exc).__name__}: {exc}")
    if loaded.command == "help":
        sys.stdout.write(config.help_text())
        return EXIT_OK
    if loaded.command == "version":
        sys.stdout.write(version_text())
        return EXIT_OK
    cfg = loaded.config
    assert cfg is not None
    try:
        configure(cfg.name, cfg.log_level, cfg.log_outputs_resolved)
    except OSError as exc:
        return _refuse_flags(f"cannot open --log-outputs: {exc}")
    log = get_logger("main")
    if cfg.config_file:
        log.info("loaded server configuration, other configuration command line flags and environment "
                 "variables will be ignored if provided", path=cfg.config_file)
    for warning in loaded.warnings:
        log.warn(warning)
    try:
        check_startable(cfg)
    except (config.ConfigError, ValueError) as exc:
        return _refuse_flags(str(exc))
    try:
        check_listen_urls(cfg)
    except ListenError as exc:
        return _refuse(str(exc), EXIT_REFUSED)
    log.info("starting petcd", **{"petcd-version": __version__, **config.as_log_fields(cfg)})
    try:
        return run_server(cfg)
    except KeyboardInterrupt:
        return 130
    except config.ConfigError as exc:  # refused by the server's bootstrap checks: etcd's line, no class name
        return _refuse(str(exc), EXIT_REFUSED)
    except Exception as exc:  # one clear line, the traceback only in the structured log
        log.exception("petcd stopped with an error", error=str(exc))
        return _refuse(f"{type(exc).__name__}: {exc}", EXIT_REFUSED)


if __name__ == "__main__":
    sys.exit(main())
