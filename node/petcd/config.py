"""petcd's configuration: etcd's flags, `ETCD_*` variables and `--config-file`, into one validated `Config`.

etcd is the specification: the same flag names, defaults, precedence and error messages (etcd 3.4/3.5).
Everything here is pure (no disk writes, no sockets, no DNS): `load(argv, environ)` returns a `Config` or
raises `UsageError` (what Go's flag package rejects; etcd exits 2) or `ConfigError` (what etcd's
verification rejects; etcd exits 1). `Config.verify_bootstrap()` holds the checks etcd runs only when a
member starts without data (the initial cluster must name this member with its advertised peer URLs).
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_NAME = "default"
DEFAULT_LISTEN_PEER_URL = "http://localhost:2380"
DEFAULT_LISTEN_CLIENT_URL = "http://localhost:2379"
DEFAULT_INITIAL_CLUSTER = f"{DEFAULT_NAME}={DEFAULT_LISTEN_PEER_URL}"
MAX_ELECTION_MS = 50000
DEFAULT_QUOTA_BACKEND_BYTES = 2 * 1024**3
RECOMMENDED_MAX_REQUEST_BYTES = 10 * 1024 * 1024
LOG_LEVELS = ("debug", "info", "warn", "error", "dpanic", "panic", "fatal")
DEFAULT_LOG_ROTATION = '{"maxsize": 100, "maxage": 0, "maxbackups": 0, "localtime": false, "compress": false}'
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


class UsageError(Exception):
    """A flag etcd's command-line parser rejects (unknown flag, unparsable value); etcd exits 2."""


class ConfigError(Exception):
    """A configuration etcd refuses to start with; etcd exits 1. The message names the setting."""


# --------------------------------------------------------------------------------------------------
# Values as etcd parses them


class Kind(enum.Enum):
    STRING = "string"
    UINT = "uint"
    INT = "int"
    BOOL = "bool"
    URLS = "urls"
    DURATION = "duration"
    CHOICE = "choice"
    LIST = "list"


_DURATION_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> float:
    """Go's time.ParseDuration, in seconds: "1h30m", "100ms", "0"; ValueError with Go's message otherwise."""
    error = ValueError(f'time: invalid duration "{text}"')
    body = text
    sign = 1.0
    if body[:1] in "+-" and body:
        sign = -1.0 if body[0] == "-" else 1.0
        body = body[1:]
    if body == "0":
        return 0.0
    if not body:
        raise error
    total = 0.0
    position = 0
    for match in _DURATION_PART.finditer(body):
        if match.start() != position:
            raise error
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position != len(body):
        raise error
    return sign * total


def parse_go_bool(text: str) -> bool:
    """Go's strconv.ParseBool."""
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise ValueError("parse error")


def _parse_int(text: str, *, unsigned: bool) -> int:
    """Go's strconv.ParseInt/ParseUint with base 0 (0x.. and 0o.. prefixes); a sign is not a uint."""
    if text != text.strip() or (unsigned and text.startswith(("+", "-"))):
        raise ValueError("parse error")
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError("parse error") from None


def check_url(text: str) -> str:
    """etcd's types.NewURLs check for one URL: scheme, host:port, no path. Returns the URL unchanged."""
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f'parse "{text}": {exc}') from None
    if parts.scheme not in ("http", "https", "unix", "unixs"):
        raise ValueError(f"URL scheme must be http, https, unix, or unixs: {text}")
    if port is None:
        raise ValueError(f'URL address does not have the form "host:port": {text}')
    if parts.path:
        raise ValueError(f"URL must not contain a path: {text}")
    return text


def parse_urls(text: str) -> tuple[str, ...]:
    """A comma-separated URL list, each checked like etcd's types.NewURLs."""
    return tuple(check_url(item.strip()) for item in text.split(","))


def parse_initial_cluster(text: str) -> dict[str, tuple[str, ...]]:
    """`name=url,name=url2,other=url3` -> {name: (url, url2), other: (url3,)}, as etcd's NewURLsMap."""
    members: dict[str, list[str]] = {}
    for item in text.split(","):
        name, _, url = item.partition("=")
        members.setdefault(name, []).append(check_url(url))
    return {name: tuple(urls) for name, urls in members.items()}


def format_initial_cluster(members: Mapping[str, Sequence[str]]) -> str:
    """etcd's URLsMap.String(): names sorted, each URL sorted, `name=url` joined with commas."""
    return ",".join(f"{name}={url}" for name in sorted(members) for url in sorted(members[name]))


def url_host(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or ""


def url_port(url: str) -> int | None:
    return urllib.parse.urlsplit(url).port


# --------------------------------------------------------------------------------------------------
# The flags


@dataclass(frozen=True)
class Option:
    """One etcd flag: its name, value kind, default (as etcd's help shows it) and help line."""

    name: str
    kind: Kind
    default: str
    help: str
    choices: tuple[str, ...] = ()
    section: str = "Member"

    @property
    def field_name(self) -> str:
        return self.name.replace("-", "_")

    @property
    def env_name(self) -> str:
        return "ETCD_" + self.name.upper().replace("-", "_")

    def parse(self, text: str) -> Any:
        """The typed value; ValueError carrying Go's wording ("parse error", "invalid value", ...)."""
        if self.kind is Kind.STRING:
            return text
        if self.kind is Kind.UINT:
            return _parse_int(text, unsigned=True)
        if self.kind is Kind.INT:
            return _parse_int(text, unsigned=False)
        if self.kind is Kind.BOOL:
            return parse_go_bool(text)
        if self.kind is Kind.URLS:
            return parse_urls(text) if text else ()
        if self.kind is Kind.DURATION:
            try:
                return parse_go_duration(text)
            except ValueError:
                raise ValueError("parse error") from None
        if self.kind is Kind.CHOICE:
            if text not in self.choices:
                raise ValueError("invalid value")
            return text
        return tuple(item for item in text.split(",") if item) if text else ()


_M, _C, _S, _A, _P, _L, _X, _U, _P2 = (
    "Member",
    "Clustering",
    "Security",
    "Auth",
    "Profiling and Monitoring",
    "Logging",
    "Experimental feature",
    "Unsafe feature",
    "v2 Proxy (to be deprecated in v4)",
)

OPTIONS: tuple[Option, ...] = (
    Option("name", Kind.STRING, DEFAULT_NAME, "Human-readable name for this member.", section=_M),
    Option("data-dir", Kind.STRING, "", "Path to the data directory.", section=_M),
    Option("wal-dir", Kind.STRING, "", "Path to the dedicated wal directory.", section=_M),
    Option("snapshot-count", Kind.UINT, "100000",
           "Number of committed transactions to trigger a snapshot to disk.", section=_M),
    Option("heartbeat-interval", Kind.UINT, "100", "Time (in milliseconds) of a heartbeat interval.",
           section=_M),
    Option("election-timeout", Kind.UINT, "1000",
           "Time (in milliseconds) for an election to timeout. See tuning documentation for details.",
           section=_M),
    Option("initial-election-tick-advance", Kind.BOOL, "true",
           "Whether to fast-forward initial election ticks on boot for faster election.", section=_M),
    Option("listen-peer-urls", Kind.URLS, DEFAULT_LISTEN_PEER_URL,
           "List of URLs to listen on for peer traffic.", section=_M),
    Option("listen-client-urls", Kind.URLS, DEFAULT_LISTEN_CLIENT_URL,
           "List of URLs to listen on for client traffic.", section=_M),
    Option("max-snapshots", Kind.UINT, "5",
           "Maximum number of snapshot files to retain (0 is unlimited).", section=_M),
    Option("max-wals", Kind.UINT, "5", "Maximum number of wal files to retain (0 is unlimited).", section=_M),
    Option("quota-backend-bytes", Kind.INT, "0",
           "Raise alarms when backend size exceeds the given quota (0 defaults to low space quota).",
           section=_M),
    Option("max-txn-ops", Kind.UINT, "128",
           "Maximum number of operations permitted in a transaction.", section=_M),
    Option("max-request-bytes", Kind.UINT, "1572864",
           "Maximum client request size in bytes the server will accept.", section=_M),
    Option("grpc-keepalive-min-time", Kind.DURATION, "5s",
           "Minimum duration interval that a client should wait before pinging server.", section=_M),
    Option("grpc-keepalive-interval", Kind.DURATION, "2h",
           "Frequency duration of server-to-client ping to check if a connection is alive (0 to disable).",
           section=_M),
    Option("grpc-keepalive-timeout", Kind.DURATION, "20s",
           "Additional duration of wait before closing a non-responsive connection (0 to disable).",
           section=_M),
    Option("initial-advertise-peer-urls", Kind.URLS, DEFAULT_LISTEN_PEER_URL,
           "List of this member's peer URLs to advertise to the rest of the cluster.", section=_C),
    Option("initial-cluster", Kind.STRING, DEFAULT_INITIAL_CLUSTER,
           "Initial cluster configuration for bootstrapping.", section=_C),
    Option("initial-cluster-state", Kind.CHOICE, "new",
           "Initial cluster state ('new' or 'existing').", ("new", "existing"), section=_C),
    Option("initial-cluster-token", Kind.STRING, "etcd-cluster",
           "Initial cluster token for the etcd cluster during bootstrap.", section=_C),
    Option("advertise-client-urls", Kind.URLS, DEFAULT_LISTEN_CLIENT_URL,
           "List of this member's client URLs to advertise to the public.", section=_C),
    Option("discovery", Kind.STRING, "", "Discovery URL used to bootstrap the cluster.", section=_C),
    Option("discovery-fallback", Kind.CHOICE, "proxy",
           "Expected behavior ('exit' or 'proxy') when discovery services fails.", ("exit", "proxy"),
           section=_C),
    Option("discovery-proxy", Kind.STRING, "",
           "HTTP proxy to use for traffic to discovery service.", section=_C),
    Option("discovery-srv", Kind.STRING, "", "DNS srv domain used to bootstrap the cluster.", section=_C),
    Option("discovery-srv-name", Kind.STRING, "",
           "Suffix to the dns srv name queried when bootstrapping.", section=_C),
    Option("strict-reconfig-check", Kind.BOOL, "true",
           "Reject reconfiguration requests that would cause quorum loss.", section=_C),
    Option("pre-vote", Kind.BOOL, "true", "Enable to run an additional Raft election phase.", section=_C),
    Option("auto-compaction-retention", Kind.STRING, "0",
           "Auto compaction retention length. 0 means disable auto compaction.", section=_C),
    Option("auto-compaction-mode", Kind.STRING, "periodic",
           "Interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for duration based "
           "retention, defaulting to hours if no time unit is provided (e.g. '5m'). 'revision' for revision "
           "number based retention.", section=_C),
    Option("enable-v2", Kind.BOOL, "false", "Accept etcd V2 client requests.", section=_C),
    Option("cert-file", Kind.STRING, "", "Path to the client server TLS cert file.", section=_S),
    Option("key-file", Kind.STRING, "", "Path to the client server TLS key file.", section=_S),
    Option("client-cert-auth", Kind.BOOL, "false", "Enable client cert authentication.", section=_S),
    Option("client-crl-file", Kind.STRING, "", "Path to the client certificate revocation list file.",
           section=_S),
    Option("client-cert-allowed-hostname", Kind.STRING, "",
           "Allowed TLS hostname for client cert authentication.", section=_S),
    Option("trusted-ca-file", Kind.STRING, "", "Path to the client server TLS trusted CA cert file.",
           section=_S),
    Option("auto-tls", Kind.BOOL, "false", "Client TLS using generated certificates.", section=_S),
    Option("peer-cert-file", Kind.STRING, "", "Path to the peer server TLS cert file.", section=_S),
    Option("peer-key-file", Kind.STRING, "", "Path to the peer server TLS key file.", section=_S),
    Option("peer-client-cert-auth", Kind.BOOL, "false", "Enable peer client cert authentication.",
           section=_S),
    Option("peer-trusted-ca-file", Kind.STRING, "", "Path to the peer server TLS trusted CA file.",
           section=_S),
    Option("peer-cert-allowed-cn", Kind.STRING, "",
           "Required CN for client certs connecting to the peer endpoint.", section=_S),
    Option("peer-cert-allowed-hostname", Kind.STRING, "",
           "Allowed TLS hostname for inter peer authentication.", section=_S),
    Option("peer-auto-tls", Kind.BOOL, "false",
           "Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not "
           "provided.", section=_S),
    Option("peer-crl-file", Kind.STRING, "", "Path to the peer certificate revocation list file.",
           section=_S),
    Option("cipher-suites", Kind.LIST, "",
           "Comma-separated list of supported TLS cipher suites between client/server and peers.",
           section=_S),
    Option("cors", Kind.LIST, "*",
           "Comma-separated whitelist of origins for CORS, or cross-origin resource sharing, (empty or * "
           "means allow all).", section=_S),
    Option("host-whitelist", Kind.LIST, "*",
           "Acceptable hostnames from HTTP client requests, if server is not secure (empty or * means allow "
           "all).", section=_S),
    Option("auth-token", Kind.STRING, "simple",
           "Specify a v3 authentication token type and its options ('simple' or 'jwt').", section=_A),
    Option("bcrypt-cost", Kind.UINT, "10",
           "Specify the cost / strength of the bcrypt algorithm for hashing auth passwords. Valid values are "
           "between 4 and 31.", section=_A),
    Option("auth-token-ttl", Kind.UINT, "300", "Time (in seconds) of the auth-token-ttl.", section=_A),
    Option("enable-pprof", Kind.BOOL, "false",
           "Enable runtime profiling data via HTTP server (accepted for compatibility; petcd has none).",
           section=_P),
    Option("metrics", Kind.CHOICE, "basic",
           "Set level of detail for exported metrics, specify 'extensive' to include histogram metrics.",
           ("basic", "extensive"), section=_P),
    Option("listen-metrics-urls", Kind.URLS, "",
           "List of URLs to listen on for the metrics and health endpoints.", section=_P),
    Option("logger", Kind.STRING, "zap", "Currently only supports 'zap' for structured logging.", section=_L),
    Option("log-outputs", Kind.LIST, "default",
           "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list "
           "of comma separated output targets.", section=_L),
    Option("log-level", Kind.STRING, "info",
           "Configures log level. Only supports debug, info, warn, error, panic, or fatal.", section=_L),
    Option("experimental-initial-corrupt-check", Kind.BOOL, "false",
           "Enable to check data corruption before serving any client/peer traffic.", section=_X),
    Option("experimental-corrupt-check-time", Kind.DURATION, "0s",
           "Duration of time between cluster corruption check passes.", section=_X),
    Option("experimental-enable-lease-checkpoint", Kind.BOOL, "false",
           "Enable leader to send regular checkpoints to other members to prevent reset of remaining TTL on "
           "leader change.", section=_X),
    Option("experimental-compaction-batch-limit", Kind.INT, "1000",
           "Sets the maximum revisions deleted in each compaction batch.", section=_X),
    Option("experimental-watch-progress-notify-interval", Kind.DURATION, "10m",
           "Duration of periodic watch progress notifications.", section=_X),
    Option("experimental-warning-apply-duration", Kind.DURATION, "100ms",
           "Time duration after which a warning is generated if request takes more time.", section=_X),
    Option("listen-client-http-urls", Kind.URLS, "",
           "List of URLs to listen on for http only client traffic.", section=_M),
    Option("backend-bbolt-freelist-type", Kind.STRING, "map",
           "BackendFreelistType specifies the type of freelist that boltdb backend uses (array and "
           "map are supported types).", section=_M),
    Option("backend-batch-interval", Kind.DURATION, "0s",
           "BackendBatchInterval is the maximum time before commit the backend transaction.", section=_M),
    Option("backend-batch-limit", Kind.INT, "0",
           "BackendBatchLimit is the maximum operations before commit the backend transaction.", section=_M),
    Option("max-concurrent-streams", Kind.UINT, "4294967295",
           "Maximum concurrent streams that each client can open at a time.", section=_M),
    Option("enable-grpc-gateway", Kind.BOOL, "true",
           "Enable GRPC gateway.", section=_M),
    Option("socket-reuse-port", Kind.BOOL, "false",
           "Enable to set socket option SO_REUSEPORT on listeners allowing rebinding of a port "
           "already in use.", section=_M),
    Option("socket-reuse-address", Kind.BOOL, "false",
           "Enable to set socket option SO_REUSEADDR on listeners allowing binding to an address in "
           "TIME_WAIT state.", section=_M),
    Option("raft-read-timeout", Kind.DURATION, "5s",
           "Read timeout set on each rafthttp connection", section=_M),
    Option("raft-write-timeout", Kind.DURATION, "5s",
           "Write timeout set on each rafthttp connection", section=_M),
    Option("v2-deprecation", Kind.CHOICE, "not-yet",
           "Phase of v2store deprecation. Allows to opt-in for higher compatibility mode.",
           ("not-yet", "write-only", "write-only-drop-data", "gone"), section=_C),
    Option("client-cert-file", Kind.STRING, "",
           "Path to an explicit peer client TLS cert file otherwise cert file will be used when "
           "client auth is required.", section=_S),
    Option("client-key-file", Kind.STRING, "",
           "Path to an explicit peer client TLS key file otherwise key file will be used when client "
           "auth is required.", section=_S),
    Option("peer-client-cert-file", Kind.STRING, "",
           "Path to an explicit peer client TLS cert file otherwise peer cert file will be used when "
           "client auth is required.", section=_S),
    Option("peer-client-key-file", Kind.STRING, "",
           "Path to an explicit peer client TLS key file otherwise peer key file will be used when "
           "client auth is required.", section=_S),
    Option("self-signed-cert-validity", Kind.UINT, "1",
           "The validity period of the client and peer certificates, unit is year.", section=_S),
    Option("tls-min-version", Kind.STRING, "TLS1.2",
           "Minimum TLS version supported by etcd. Possible values: TLS1.2, TLS1.3.", section=_S),
    Option("tls-max-version", Kind.STRING, "",
           "Maximum TLS version supported by etcd. Possible values: TLS1.2, TLS1.3 (empty defers to "
           "Go).", section=_S),
    Option("enable-log-rotation", Kind.BOOL, "false",
           "Enable log rotation of a single log-outputs file target.", section=_L),
    Option("log-rotation-config-json", Kind.STRING, DEFAULT_LOG_ROTATION,
           "Configures log rotation if enabled with a JSON logger config.", section=_L),
    Option("debug", Kind.BOOL, "false",
           "Enable debug-level logging for etcd. Use '--log-level=debug' instead.", section=_L),
    Option("experimental-enable-distributed-tracing", Kind.BOOL, "false",
           "Enable experimental distributed tracing using OpenTelemetry Tracing.", section=_X),
    Option("experimental-distributed-tracing-address", Kind.STRING, "localhost:4317",
           "Address for distributed tracing used for OpenTelemetry Tracing.", section=_X),
    Option("experimental-distributed-tracing-service-name", Kind.STRING, "etcd",
           "Configures service name for distributed tracing to be used to define service name for "
           "OpenTelemetry Tracing.", section=_X),
    Option("experimental-distributed-tracing-instance-id", Kind.STRING, "",
           "Configures service instance ID for distributed tracing to be used to define service "
           "instance ID key for OpenTelemetry Tracing.", section=_X),
    Option("experimental-distributed-tracing-sampling-rate", Kind.INT, "0",
           "Number of samples to collect per million spans for OpenTelemetry Tracing.", section=_X),
    Option("proxy", Kind.CHOICE, "off",
           "Proxy mode setting ('off', 'readonly' or 'on').", ("off", "readonly", "on"), section=_P2),
    Option("proxy-failure-wait", Kind.UINT, "5000",
           "Time (in milliseconds) an endpoint will be held in a failed state.", section=_P2),
    Option("proxy-refresh-interval", Kind.UINT, "30000",
           "Time (in milliseconds) of the endpoints refresh interval.", section=_P2),
    Option("proxy-dial-timeout", Kind.UINT, "1000",
           "Time (in milliseconds) for a dial to timeout.", section=_P2),
    Option("proxy-write-timeout", Kind.UINT, "5000",
           "Time (in milliseconds) for a write to timeout.", section=_P2),
    Option("proxy-read-timeout", Kind.UINT, "0",
           "Time (in milliseconds) for a read to timeout.", section=_P2),
    Option("experimental-compact-hash-check-enabled", Kind.BOOL, "false",
           "Enable leader to periodically check followers compaction hashes.", section=_X),
    Option("experimental-compact-hash-check-time", Kind.DURATION, "1m",
           "Duration of time between leader checks followers compaction hashes.", section=_X),
    Option("experimental-enable-v2v3", Kind.STRING, "",
           "Serve v2 requests through the v3 backend under a given prefix.", section=_X),
    Option("experimental-enable-lease-checkpoint-persist", Kind.BOOL, "false",
           "Enable persisting remainingTTL to prevent indefinite auto-renewal of long lived leases.",
           section=_X),
    Option("experimental-compaction-sleep-interval", Kind.DURATION, "10ms",
           "Sets the sleep interval between each compaction batch.", section=_X),
    Option("experimental-peer-skip-client-san-verification", Kind.BOOL, "false",
           "Skip verification of SAN field in client certificate for peer connections.", section=_X),
    Option("experimental-downgrade-check-time", Kind.DURATION, "5s",
           "Duration of time between two downgrade status checks.", section=_X),
    Option("experimental-memory-mlock", Kind.BOOL, "false",
           "Enable to enforce etcd pages (in particular bbolt) to stay in RAM.", section=_X),
    Option("experimental-txn-mode-write-with-shared-buffer", Kind.BOOL, "true",
           "Enable the write transaction to use a shared buffer in its readonly check operations.",
           section=_X),
    Option("experimental-bootstrap-defrag-threshold-megabytes", Kind.UINT, "0",
           "Enable the defrag during etcd server bootstrap on condition that it will free at least "
           "the provided threshold of disk space. Needs to be set to non-zero value to take effect.",
           section=_X),
    Option("experimental-stop-grpc-service-on-defrag", Kind.BOOL, "false",
           "Enable etcd gRPC service to stop serving client requests on defragmentation.", section=_X),
    Option("unsafe-no-fsync", Kind.BOOL, "false",
           "Disables fsync, unsafe, will cause data loss.", section=_U),
    Option("experimental-backend-bbolt-freelist-type", Kind.STRING, "array",
           "ExperimentalBackendFreelistType specifies the type of freelist that boltdb backend uses (array "
           "and map are supported types).", section=_X),
    Option("log-package-levels", Kind.STRING, "",
           "Specify a particular log level for each etcd package (eg: 'etcdmain=CRITICAL,etcdserver=DEBUG').",
           section=_L),
    Option("force-new-cluster", Kind.BOOL, "false", "Force to create a new one-member cluster.", section=_U),
)

OPTION_BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}
# Flags handled by the command line itself, not configuration values.
COMMAND_FLAGS = ("config-file", "version", "help", "h")


# --------------------------------------------------------------------------------------------------
# The configuration


@dataclass(frozen=True)
class TLSInfo:
    """One side's TLS settings (client or peer), as etcd's transport.TLSInfo. Parsed now, served later."""

    cert_file: str = ""
    key_file: str = ""
    trusted_ca_file: str = ""
    client_cert_auth: bool = False
    crl_file: str = ""
    auto_tls: bool = False
    allowed_cn: str = ""
    allowed_hostname: str = ""

    @property
    def empty(self) -> bool:
        return not (self.cert_file or self.key_file or self.auto_tls)


@dataclass(frozen=True)
class Config:
    """Every setting petcd takes, with etcd's names (dashes become underscores) and defaults.

    Durations are seconds (float); times etcd gives in milliseconds stay in milliseconds (int), as
    their flag names say. `explicit` holds the names of the flags the user set (flag, env or file).
    """

    name: str = DEFAULT_NAME
    data_dir: str = ""
    wal_dir: str = ""
    snapshot_count: int = 100000
    heartbeat_interval: int = 100
    election_timeout: int = 1000
    initial_election_tick_advance: bool = True
    listen_peer_urls: tuple[str, ...] = (DEFAULT_LISTEN_PEER_URL,)
    listen_client_urls: tuple[str, ...] = (DEFAULT_LISTEN_CLIENT_URL,)
    max_snapshots: int = 5
    max_wals: int = 5
    quota_backend_bytes: int = 0
    max_txn_ops: int = 128
    max_request_bytes: int = 1572864
    grpc_keepalive_min_time: float = 5.0
    grpc_keepalive_interval: float = 7200.0
    grpc_keepalive_timeout: float = 20.0
    initial_advertise_peer_urls: tuple[str, ...] = (DEFAULT_LISTEN_PEER_URL,)
    initial_cluster: str = DEFAULT_INITIAL_CLUSTER
    initial_cluster_state: str = "new"
    initial_cluster_token: str = "etcd-cluster"
    advertise_client_urls: tuple[str, ...] = (DEFAULT_LISTEN_CLIENT_URL,)
    discovery: str = ""
    discovery_fallback: str = "proxy"
    discovery_proxy: str = ""
    discovery_srv: str = ""
    discovery_srv_name: str = ""
    strict_reconfig_check: bool = True
    pre_vote: bool = True
    auto_compaction_retention: str = "0"
    auto_compaction_mode: str = "periodic"
    enable_v2: bool = False
    client_tls: TLSInfo = field(default_factory=TLSInfo)
    peer_tls: TLSInfo = field(default_factory=TLSInfo)
    cipher_suites: tuple[str, ...] = ()
    cors: tuple[str, ...] = ("*",)
    host_whitelist: tuple[str, ...] = ("*",)
    auth_token: str = "simple"
    bcrypt_cost: int = 10
    auth_token_ttl: int = 300
    enable_pprof: bool = False
    metrics: str = "basic"
    listen_metrics_urls: tuple[str, ...] = ()
    logger: str = "zap"
    log_outputs: tuple[str, ...] = ("default",)
    log_level: str = "info"
    experimental_initial_corrupt_check: bool = False
    experimental_corrupt_check_time: float = 0.0
    experimental_enable_lease_checkpoint: bool = False
    experimental_compaction_batch_limit: int = 1000
    experimental_watch_progress_notify_interval: float = 600.0
    experimental_warning_apply_duration: float = 0.1
    force_new_cluster: bool = False
    experimental_backend_bbolt_freelist_type: str = "array"
    log_package_levels: str = ""
    listen_client_http_urls: tuple[str, ...] = ()
    backend_bbolt_freelist_type: str = "map"
    backend_batch_interval: float = 0.0
    backend_batch_limit: int = 0
    max_concurrent_streams: int = 4294967295
    enable_grpc_gateway: bool = True
    socket_reuse_port: bool = False
    socket_reuse_address: bool = False
    raft_read_timeout: float = 5.0
    raft_write_timeout: float = 5.0
    v2_deprecation: str = "not-yet"
    client_cert_file: str = ""
    client_key_file: str = ""
    peer_client_cert_file: str = ""
    peer_client_key_file: str = ""
    self_signed_cert_validity: int = 1
    tls_min_version: str = "TLS1.2"
    tls_max_version: str = ""
    enable_log_rotation: bool = False
    log_rotation_config_json: str = DEFAULT_LOG_ROTATION
    debug: bool = False
    experimental_enable_distributed_tracing: bool = False
    experimental_distributed_tracing_address: str = "localhost:4317"
    experimental_distributed_tracing_service_name: str = "etcd"
    experimental_distributed_tracing_instance_id: str = ""
    experimental_distributed_tracing_sampling_rate: int = 0
    proxy: str = "off"
    proxy_failure_wait: int = 5000
    proxy_refresh_interval: int = 30000
    proxy_dial_timeout: int = 1000
    proxy_write_timeout: int = 5000
    proxy_read_timeout: int = 0
    experimental_compact_hash_check_enabled: bool = False
    experimental_compact_hash_check_time: float = 60.0
    experimental_enable_v2v3: str = ""
    experimental_enable_lease_checkpoint_persist: bool = False
    experimental_compaction_sleep_interval: float = 0.01
    experimental_peer_skip_client_san_verification: bool = False
    experimental_downgrade_check_time: float = 5.0
    experimental_memory_mlock: bool = False
    experimental_txn_mode_write_with_shared_buffer: bool = True
    experimental_bootstrap_defrag_threshold_megabytes: int = 0
    experimental_stop_grpc_service_on_defrag: bool = False
    unsafe_no_fsync: bool = False
    config_file: str = ""
    explicit: frozenset[str] = frozenset()

    # ---- derived values

    @property
    def effective_data_dir(self) -> str:
        """etcd: an empty --data-dir means `${name}.etcd`."""
        return self.data_dir or f"{self.name}.etcd"

    @property
    def member_dir(self) -> Path:
        return Path(self.effective_data_dir) / "member"

    @property
    def wal_path(self) -> Path:
        """Where the WAL lives: --wal-dir when given, else <data-dir>/member/wal (etcd's layout)."""
        return Path(self.wal_dir) if self.wal_dir else self.member_dir / "wal"

    @property
    def snap_path(self) -> Path:
        return self.member_dir / "snap"

    @property
    def initial_cluster_members(self) -> dict[str, tuple[str, ...]]:
        """--initial-cluster as {name: peer URLs}; empty when bootstrapping by discovery."""
        return parse_initial_cluster(self.initial_cluster) if self.initial_cluster else {}

    @property
    def election_ticks(self) -> int:
        """etcd: election ticks = election-timeout / heartbeat-interval (one tick per heartbeat)."""
        return self.election_timeout // self.heartbeat_interval

    @property
    def effective_quota_backend_bytes(self) -> int:
        return self.quota_backend_bytes if self.quota_backend_bytes > 0 else DEFAULT_QUOTA_BACKEND_BYTES

    @property
    def auto_compaction(self) -> tuple[str, float]:
        """(mode, retention): revisions for 'revision', seconds for 'periodic'; retention 0 means off.

        etcd: a bare integer is hours (periodic) or revisions (revision); anything else is a Go duration.
        """
        text = self.auto_compaction_retention
        if re.fullmatch(r"\d+", text):
            number = int(text)
            return self.auto_compaction_mode, float(number * 3600 if self.auto_compaction_mode == "periodic"
                                                    else number)
        seconds = parse_go_duration(text)
        if self.auto_compaction_mode == "revision":
            return "revision", seconds * 1e9  # etcd keeps the Duration's nanoseconds as the revision count
        return "periodic", seconds

    @property
    def log_outputs_resolved(self) -> tuple[str, ...]:
        """etcd: 'default' means stderr (journald is not used)."""
        return tuple("stderr" if output == "default" else output for output in self.log_outputs)

    # ---- checks

    def bootstrap_members(self) -> dict[str, tuple[str, ...]]:
        """The member map a new cluster starts from (etcd's PeerURLsMapAndToken): --initial-cluster,
        or with a discovery URL a temporary map of this member alone. DNS SRV bootstrapping computes
        its own map (petcd.discovery) and passes it to verify_bootstrap."""
        if self.discovery:
            return {self.name: self.initial_advertise_peer_urls}
        return self.initial_cluster_members

    @property
    def bootstrap_token(self) -> str:
        """The token member IDs derive from: the discovery URL when discovering, else the cluster token."""
        return self.discovery or self.initial_cluster_token

    def verify_bootstrap(self, members: Mapping[str, Sequence[str]] | None = None) -> None:
        """The checks etcd runs when this member starts with no data (VerifyBootstrap/VerifyJoinExisting).

        The server calls this only when no WAL exists: with data, the initial cluster is ignored.
        """
        members = self.bootstrap_members() if members is None else members
        if self.initial_cluster_state == "existing" and self.discovery:
            raise ConfigError("discovery URL should not be set when joining existing initial cluster")
        if members and self.name not in members:
            missing = f'couldn\'t find local name "{self.name}" in the initial cluster configuration'
            if self.discovery or self.discovery_srv:
                raise ConfigError(missing)
            # etcd's words, then the fix (issue 12): this member's entry, as --initial-cluster spells it
            entry = ",".join(f"{self.name}={url}" for url in self.initial_advertise_peer_urls)
            raise ConfigError(f"{missing}; add {entry} to --initial-cluster")
        if self.initial_cluster_state == "new" and members:
            _check_advertise_matches_cluster(self.name, self.initial_advertise_peer_urls, members[self.name])
        seen: set[str] = set()
        for urls in members.values():
            for url in urls:
                if url in seen:
                    raise ConfigError(f"initial cluster {format_initial_cluster(members)} has duplicate url")
                seen.add(url)
        if not members and not self.discovery:
            raise ConfigError("initial cluster unset and no discovery URL found")


def _go_quote_list(items: Sequence[str]) -> str:
    return "[" + " ".join(f'"{item}"' for item in items) + "]"


def _check_advertise_matches_cluster(name: str, advertised: Sequence[str], listed: Sequence[str]) -> None:
    """etcd's advertiseMatchesCluster, without DNS: URLs are compared as written (localhost and IP
    literals, which etcd does not resolve either, behave exactly as in etcd)."""
    apurls, urls = sorted(advertised), sorted(listed)
    if apurls == urls:
        return
    if len(apurls) != len(urls):
        detail = f"len({_go_quote_list(apurls)}) != len({_go_quote_list(urls)})"
    else:
        first = next(i for i in range(len(urls)) if apurls[i] != urls[i])
        detail = f'resolved urls: "{apurls[first]}" != "{urls[first]}"'
    missing = [f"{name}={url}" for url in urls if url not in apurls]
    if missing:
        raise ConfigError(
            f"--initial-cluster has {','.join(missing)} but missing from "
            f"--initial-advertise-peer-urls={','.join(apurls)} ({detail})")
    extra = [url for url in apurls if url not in urls]
    raise ConfigError(
        f"--initial-advertise-peer-urls has {','.join(extra)} but missing from "
        f"--initial-cluster={format_initial_cluster({name: advertised})}")


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_wildcard_host(host: str) -> bool:
    return host in ("0.0.0.0", "::", "")


def _check_bind_urls(urls: Iterable[str]) -> None:
    """etcd's checkBindURLs: a listen URL's host must be an IP address or localhost."""
    for url in urls:
        if urllib.parse.urlsplit(url).scheme in ("unix", "unixs"):
            continue
        host = url_host(url)
        if host == "localhost":
            continue
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(f"expected IP in URL for binding ({url})") from None


def _check_host_urls(flag: str, urls: Sequence[str]) -> None:
    for url in urls:
        if not url_host(url):
            raise ConfigError(
                f'--{flag} "{",".join(urls)}" must be "host:port" (unexpected empty host ({url}))')


def _serves(listen_url: str, host: str, port: int | None) -> bool:
    """Whether a listener on `listen_url` accepts connections made to host:port."""
    listen_host = url_host(listen_url)
    if url_port(listen_url) != port:
        return False
    if _is_wildcard_host(listen_host) or listen_host == host:
        return True
    return _is_loopback_host(listen_host) and _is_loopback_host(host) and "localhost" in (listen_host, host)


def _check_loopback_advertise(config: Config) -> None:
    """An advertised loopback client URL that no listener serves can never be reached: say which to add."""
    for url in config.advertise_client_urls:
        host, port = url_host(url), url_port(url)
        if not _is_loopback_host(host):
            continue
        if not any(_serves(listen, host, port) for listen in config.listen_client_urls):
            raise ConfigError(
                f"--advertise-client-urls has {url} but no --listen-client-urls serves it "
                f"(listening on {','.join(config.listen_client_urls)}); add {url} to --listen-client-urls")


def validate(config: Config) -> None:
    """etcd's embed.Config.Validate (order and wording kept), plus petcd's loopback check."""
    if config.proxy != "off":
        raise ConfigError(f"--proxy={config.proxy}: etcd's v2 proxy mode is not supported by petcd")
    if config.logger == "capnslog":
        raise ConfigError("--logger=capnslog is removed in v3.5")
    if config.logger != "zap":
        raise ConfigError(f'unknown logger option "{config.logger}"')
    if config.log_level not in LOG_LEVELS:
        raise ConfigError(f'unknown level "{config.log_level}"')
    _check_bind_urls(config.listen_peer_urls)
    _check_bind_urls(config.listen_client_urls)
    _check_bind_urls(config.listen_metrics_urls)
    _check_host_urls("initial-advertise-peer-urls", config.initial_advertise_peer_urls)
    _check_host_urls("advertise-client-urls", config.advertise_client_urls)
    bootstraps = sum(bool(v) for v in (config.discovery, config.initial_cluster, config.discovery_srv))
    if bootstraps > 1:
        raise ConfigError('multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", '
                          '"discovery" or "discovery-srv"')
    if config.heartbeat_interval <= 0:
        raise ConfigError(f"--heartbeat-interval must be >0 (set to {config.heartbeat_interval}ms)")
    if config.election_timeout <= 0:
        raise ConfigError(f"--election-timeout must be >0 (set to {config.election_timeout}ms)")
    if 5 * config.heartbeat_interval > config.election_timeout:
        raise ConfigError(f"--election-timeout[{config.election_timeout}ms] should be at least as 5 times as "
                          f"--heartbeat-interval[{config.heartbeat_interval}ms]")
    if config.election_timeout > MAX_ELECTION_MS:
        raise ConfigError(f"--election-timeout[{config.election_timeout}ms] is too long, and should be set "
                          f"less than {MAX_ELECTION_MS}ms")
    if config.listen_client_urls and not config.advertise_client_urls:
        raise ConfigError("--advertise-client-urls is required when --listen-client-urls is set explicitly")
    if config.auto_compaction_mode not in ("", "periodic", "revision"):
        raise ConfigError(f'unknown auto-compaction-mode "{config.auto_compaction_mode}"')
    try:
        _ = config.auto_compaction
    except ValueError as exc:
        raise ConfigError(f"error parsing CompactionRetention: {exc}") from None
    for side, tls, urls in (("client", config.client_tls, config.listen_client_urls),
                            ("peer", config.peer_tls, config.listen_peer_urls)):
        flags = "--cert-file, --key-file" if side == "client" else "--peer-cert-file, --peer-key-file"
        for url in urls:
            if urllib.parse.urlsplit(url).scheme in ("https", "unixs") and tls.empty:
                raise ConfigError(f"TLS key/cert ({flags}) must be provided for {side} url {url} with "
                                  f"HTTPS scheme")
    try:
        _ = config.initial_cluster_members
    except ValueError as exc:
        raise ConfigError(f"error setting up initial cluster: {exc}") from None
    _check_loopback_advertise(config)


def start_warnings(config: Config, environ: Mapping[str, str]) -> list[str]:
    """Settings etcd accepts but that are likely mistakes; logged at start, never fatal."""
    warnings = []
    proxies = [name for name in PROXY_VARIABLES if environ.get(name)]
    if proxies:
        warnings.append(
            f"proxy environment variables are set ({', '.join(proxies)}); petcd never sends its own peer or "
            "client traffic through a proxy (a proxy in the path is a known cause of 'context deadline "
            "exceeded' in etcd clusters)")
    reachable_locally = any(
        _is_wildcard_host(url_host(url)) or _is_loopback_host(url_host(url))
        for url in config.listen_client_urls if urllib.parse.urlsplit(url).scheme in ("http", "https"))
    if config.listen_client_urls and not reachable_locally:
        port = url_port(config.listen_client_urls[0]) or 2379
        scheme = urllib.parse.urlsplit(config.listen_client_urls[0]).scheme
        warnings.append(
            f"--listen-client-urls ({','.join(config.listen_client_urls)}) has no loopback address: local "
            f"clients using etcdctl's default endpoint 127.0.0.1:2379 cannot connect; add "
            f"{scheme}://127.0.0.1:{port} to --listen-client-urls")
    if config.max_request_bytes > RECOMMENDED_MAX_REQUEST_BYTES:
        warnings.append(f"exceeded recommended request limit: --max-request-bytes={config.max_request_bytes} "
                        f"(recommended {RECOMMENDED_MAX_REQUEST_BYTES})")
    if not config.data_dir:
        warnings.append(f"'data-dir' was empty; using default: {config.effective_data_dir}")
    return warnings


# --------------------------------------------------------------------------------------------------
# Sources: command line (Go's flag syntax), ETCD_* environment, YAML file


@dataclass(frozen=True)
class CommandLine:
    """What the command line said: flag values as written, and the command flags."""

    values: dict[str, str]
    config_file: str = ""
    version: bool = False
    help: bool = False


def parse_command_line(argv: Sequence[str]) -> CommandLine:
    """Go's flag package: `-f`, `--f`, `-f=v`, `-f v`; bool flags take no separate value.

    Raises UsageError with Go's wording. A leftover argument is a ConfigError, as in etcd
    ("'foo' is not a valid flag").
    """
    values: dict[str, str] = {}
    config_file = ""
    version = help_ = False
    args = list(argv)
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            if index < len(args):
                raise ConfigError(f"'{args[index]}' is not a valid flag")
            break
        if len(arg) < 2 or not arg.startswith("-"):
            raise ConfigError(f"'{arg}' is not a valid flag")
        body = arg[2:] if arg.startswith("--") else arg[1:]
        if not body or body.startswith(("-", "=")):
            raise UsageError(f"bad flag syntax: {arg}")
        name, has_value, value = body.partition("=")
        is_bool = name in ("version", "help", "h") or (
            name in OPTION_BY_NAME and OPTION_BY_NAME[name].kind is Kind.BOOL)
        if name not in OPTION_BY_NAME and name not in COMMAND_FLAGS:
            raise UsageError(f"flag provided but not defined: -{name}")
        if not has_value and not is_bool:
            if index >= len(args):
                raise UsageError(f"flag needs an argument: -{name}")
            value = args[index]
            index += 1
        if is_bool:
            text = value if has_value else "true"
            try:
                flag_on = parse_go_bool(text)
            except ValueError:
                raise UsageError(f'invalid boolean value "{text}" for -{name}: parse error') from None
            if name == "version":
                version = flag_on
                continue
            if name in ("help", "h"):
                help_ = flag_on
                continue
            value = text
        if name == "config-file":
            config_file = value
            continue
        try:
            OPTION_BY_NAME[name].parse(value)
        except ValueError as exc:
            raise UsageError(f'invalid value "{value}" for flag -{name}: {exc}') from None
        values[name] = value
    return CommandLine(values=values, config_file=config_file, version=version, help=help_)


def values_from_environment(environ: Mapping[str, str], command_line: Mapping[str, str]
                            ) -> tuple[dict[str, str], list[str]]:
    """etcd's SetFlagsFromEnv: `ETCD_<FLAG>` for every flag not on the command line.

    A variable that shadows a flag also given on the command line is an error, as in etcd; unknown
    `ETCD_*` variables are returned as warnings.
    """
    values: dict[str, str] = {}
    for option in OPTIONS:
        if option.env_name not in environ:
            continue
        text = environ[option.env_name]
        if option.name in command_line:
            raise ConfigError(
                f'conflicting environment variable "{option.env_name}" is shadowed by corresponding '
                "command-line flag (either unset environment variable or disable flag)")
        try:
            option.parse(text)
        except ValueError as exc:
            raise ConfigError(f'invalid value "{text}" for {option.env_name}: {exc}') from None
        values[option.name] = text
    # ETCD_UNSUPPORTED_ARCH is etcd's own switch for running on architectures it calls unsupported.
    known = {option.env_name for option in OPTIONS} | {"ETCD_CONFIG_FILE", "ETCD_UNSUPPORTED_ARCH"}
    # etcdctl's own variables are commonly exported in the same shell; etcd ignores them too.
    warnings = [f"unrecognized environment variable {key}={value}" for key, value in sorted(environ.items())
                if key.startswith("ETCD_") and key not in known and not key.startswith("ETCDCTL_")]
    return values, warnings


_GO_TYPES = {Kind.UINT: "uint", Kind.INT: "int64", Kind.BOOL: "bool", Kind.STRING: "string",
             Kind.URLS: "string", Kind.CHOICE: "string", Kind.DURATION: "time.Duration", Kind.LIST: "string"}
_YAML_TLS_KEYS = {
    "cert-file": "cert_file", "key-file": "key_file", "trusted-ca-file": "trusted_ca_file",
    "client-cert-auth": "client_cert_auth", "crl-file": "crl_file", "auto-tls": "auto_tls",
    "allowed-cn": "allowed_cn", "allowed-hostname": "allowed_hostname",
}


def _yaml_type_name(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def _yaml_value_as_text(option: Option, value: object) -> str:
    """A YAML value as the flag text it stands for; the error mirrors etcd's JSON decoding message."""
    def mismatch() -> ConfigError:
        return ConfigError(
            f"error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {_yaml_type_name(value)} "
            f"into Go struct field configYAML.{option.name} of type {_GO_TYPES[option.kind]}")

    if option.kind is Kind.BOOL:
        if not isinstance(value, bool):
            raise mismatch()
        return "true" if value else "false"
    if option.kind in (Kind.UINT, Kind.INT):
        if isinstance(value, bool) or not isinstance(value, int):
            raise mismatch()
        return str(value)
    if option.kind is Kind.DURATION:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise mismatch()
        return f"{value}ns" if isinstance(value, int) else value
    if option.kind is Kind.LIST and isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, dict | list):
        raise mismatch()
    return "" if value is None else str(value)


def values_from_yaml(text: str) -> tuple[dict[str, str], dict[str, TLSInfo]]:
    """etcd's --config-file: keys are flag names; URL lists are comma-separated strings; TLS settings
    sit under `client-transport-security` and `peer-transport-security`. Unknown keys are ignored, as
    etcd's YAML decoding ignores them."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"error converting YAML to JSON: yaml: {exc}".replace("\n", " ")) from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError("error unmarshaling JSON: while decoding JSON: json: cannot unmarshal "
                          f"{_yaml_type_name(document)} into Go value of type embed.configYAML")
    values: dict[str, str] = {}
    tls: dict[str, TLSInfo] = {}
    for key, value in document.items():
        if key in ("client-transport-security", "peer-transport-security"):
            section = value or {}
            if not isinstance(section, dict):
                raise ConfigError(f"error unmarshaling JSON: while decoding JSON: json: cannot unmarshal "
                                  f"{_yaml_type_name(section)} into Go struct field configYAML.{key}")
            settings = {_YAML_TLS_KEYS[k]: v for k, v in section.items() if k in _YAML_TLS_KEYS}
            tls["client" if key.startswith("client") else "peer"] = TLSInfo(**settings)
            continue
        option = OPTION_BY_NAME.get(str(key))
        if option is None:
            continue
        value_text = _yaml_value_as_text(option, value)
        try:
            option.parse(value_text)
        except ValueError as exc:
            raise ConfigError(f"unexpected error setting up {option.name}: {exc}") from None
        values[option.name] = value_text
    return values, tls


def _tls_from_values(values: Mapping[str, Any], prefix: str) -> TLSInfo:
    client = prefix == ""
    return TLSInfo(
        cert_file=values[f"{prefix}cert_file"],
        key_file=values[f"{prefix}key_file"],
        trusted_ca_file=values[f"{prefix}trusted_ca_file"],
        client_cert_auth=values[f"{prefix}client_cert_auth"],
        crl_file=values["client_crl_file" if client else "peer_crl_file"],
        auto_tls=values[f"{prefix}auto_tls"],
        allowed_cn="" if client else values["peer_cert_allowed_cn"],
        allowed_hostname=values["client_cert_allowed_hostname" if client else "peer_cert_allowed_hostname"],
    )


# The flags that make up Config.client_tls and Config.peer_tls rather than fields of their own.
_TLS_OPTION_FIELDS = frozenset({
    "cert_file", "key_file", "trusted_ca_file", "client_cert_auth", "auto_tls", "client_crl_file",
    "client_cert_allowed_hostname", "peer_cert_file", "peer_key_file", "peer_trusted_ca_file",
    "peer_client_cert_auth", "peer_auto_tls", "peer_crl_file", "peer_cert_allowed_cn",
    "peer_cert_allowed_hostname",
})


def build(values: Mapping[str, str], *, config_file: str = "", tls: Mapping[str, TLSInfo] | None = None,
          from_file: bool = False) -> Config:
    """Flag texts (already checked by Option.parse) over the defaults -> a validated Config."""
    typed = {option.field_name: option.parse(values.get(option.name, option.default)) for option in OPTIONS}
    explicit = frozenset(values)
    # etcd: a member with a non-default name and the default --initial-cluster bootstraps alone,
    # as `name=<its advertised peer URLs>`.
    if "initial-cluster" not in explicit and typed["name"] != DEFAULT_NAME:
        typed["initial_cluster"] = ",".join(f"{typed['name']}={url}"
                                            for url in typed["initial_advertise_peer_urls"])
    # etcd 3.4: the deprecated --debug means --log-level=debug.
    if typed["debug"]:
        typed["log_level"] = "debug"
    # etcd: discovery replaces the default initial cluster.
    if (typed["discovery"] or typed["discovery_srv"]) and "initial-cluster" not in explicit:
        typed["initial_cluster"] = ""
    # etcd (flags and env only): listening explicitly without advertising is an error, not a default.
    if not from_file and "listen-client-urls" in explicit and "advertise-client-urls" not in explicit:
        typed["advertise_client_urls"] = ()
    client_tls = _tls_from_values(typed, "")
    peer_tls = _tls_from_values(typed, "peer_")
    if tls:
        client_tls = tls.get("client", client_tls)
        peer_tls = tls.get("peer", peer_tls)
    plain = {k: v for k, v in typed.items() if k not in _TLS_OPTION_FIELDS}
    config = Config(**plain, client_tls=client_tls, peer_tls=peer_tls, config_file=config_file,
                    explicit=explicit)
    validate(config)
    return config


@dataclass(frozen=True)
class Loaded:
    """The outcome of reading the command line: a Config to run, or a command (help, version)."""

    config: Config | None
    command: str = ""  # "help" | "version" | ""
    warnings: tuple[str, ...] = ()


def load(argv: Sequence[str], environ: Mapping[str, str],
         read_file: Callable[[str], str] | None = None) -> Loaded:
    """flags > ETCD_* > defaults; or, when --config-file / ETCD_CONFIG_FILE is given, the file alone
    (etcd then ignores the other flags and the environment)."""
    command_line = parse_command_line(argv)
    if command_line.help:
        return Loaded(config=None, command="help")
    if command_line.version:
        return Loaded(config=None, command="version")
    config_file = command_line.config_file or environ.get("ETCD_CONFIG_FILE", "")
    if config_file:
        reader = read_file or (lambda path: Path(path).read_text(encoding="utf-8"))
        try:
            text = reader(config_file)
        except OSError as exc:
            reason = exc.strerror.lower() if exc.strerror else str(exc)
            raise ConfigError(f"open {config_file}: {reason}") from None
        values, tls = values_from_yaml(text)
        warnings: list[str] = []
        config = build(values, config_file=config_file, tls=tls, from_file=True)
    else:
        env_values, warnings = values_from_environment(environ, command_line.values)
        config = build({**env_values, **command_line.values})
    return Loaded(config=config, warnings=(*warnings, *start_warnings(config, environ)))


def help_text(program: str = "petcd") -> str:
    """`petcd --help`, laid out like `etcd --help`: sections, each flag with its default and meaning."""
    lines = [
        "Usage:", "", f"  {program} [flags]", "    Start a petcd server.", "",
        f"  {program} --version", f"    Show the version of {program}.", "",
        f"  {program} -h | --help", f"    Show the help information about {program}.", "",
        f"  {program} --config-file",
        "    Path to the server configuration file. Note that if a configuration file is provided, other "
        "command line flags and environment variables will be ignored.", "",
    ]
    sections = list(dict.fromkeys(option.section for option in OPTIONS))  # in order of appearance
    for section in sections:
        lines += ["", f"{section}:"]
        for option in OPTIONS:
            if option.section == section:
                default = "${name}.etcd" if option.name == "data-dir" else option.default
                lines += [f"  --{option.name} '{default}'", f"    {option.help}"]
    lines += ["", "Every flag can also be given as an environment variable: --initial-cluster-token is "
              "ETCD_INITIAL_CLUSTER_TOKEN."]
    return "\n".join(lines) + "\n"


def as_log_fields(config: Config) -> dict[str, object]:
    """The settings petcd logs at start (etcd's 'starting an etcd server' line)."""
    fields = dataclasses.asdict(config)
    fields.pop("explicit")
    for tls_side in ("client_tls", "peer_tls"):
        fields[tls_side] = {k: v for k, v in fields[tls_side].items() if v}
    return {key.replace("_", "-"): value for key, value in fields.items()}
