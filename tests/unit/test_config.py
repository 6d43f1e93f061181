"""petcd.config: etcd's flags, ETCD_* variables and --config-file into one validated Config."""

from __future__ import annotations

import pytest
from petcd import config
from petcd.config import Config, ConfigError, UsageError, load


def cfg(*argv: str, env: dict[str, str] | None = None) -> Config:
    loaded = load(list(argv), env or {})
    assert loaded.config is not None
    return loaded.config


# ---------------------------------------------------------------- defaults


def test_no_flags_gives_etcds_defaults() -> None:
    c = cfg()
    assert c.name == "default"
    assert c.effective_data_dir == "default.etcd"
    assert c.listen_client_urls == ("http://localhost:2379",)
    assert c.advertise_client_urls == ("http://localhost:2379",)
    assert c.listen_peer_urls == ("http://localhost:2380",)
    assert c.initial_advertise_peer_urls == ("http://localhost:2380",)
    assert c.initial_cluster_members == {"default": ("http://localhost:2380",)}
    assert (c.initial_cluster_state, c.initial_cluster_token) == ("new", "etcd-cluster")
    assert (c.heartbeat_interval, c.election_timeout, c.election_ticks) == (100, 1000, 10)
    assert (c.snapshot_count, c.max_txn_ops, c.max_request_bytes) == (100000, 128, 1572864)
    assert c.effective_quota_backend_bytes == 2 * 1024**3
    assert c.experimental_watch_progress_notify_interval == 600.0
    assert c.wal_path.as_posix() == "default.etcd/member/wal"
    assert c.log_outputs_resolved == ("stderr",)
    c.verify_bootstrap()


def test_a_named_member_bootstraps_alone_from_its_advertised_peer_urls() -> None:
    c = cfg("--name", "infra0", "--initial-advertise-peer-urls", "http://127.0.0.1:12380",
            "--listen-peer-urls", "http://127.0.0.1:12380")
    assert c.initial_cluster == "infra0=http://127.0.0.1:12380"
    assert c.effective_data_dir == "infra0.etcd"
    c.verify_bootstrap()


def test_config_is_frozen() -> None:
    c = cfg()
    with pytest.raises(AttributeError):
        c.name = "other"  # type: ignore[misc]


# ---------------------------------------------------------------- Go flag syntax


@pytest.mark.parametrize("argv", [
    ["--name", "x"], ["-name", "x"], ["--name=x"], ["-name=x"],
])
def test_go_flag_spellings(argv: list[str]) -> None:
    assert cfg(*argv).name == "x"


def test_bool_flags_take_no_separate_value() -> None:
    assert cfg("--enable-v2").enable_v2 is True
    assert cfg("--enable-v2=false").enable_v2 is False
    assert cfg("--strict-reconfig-check=0").strict_reconfig_check is False


def test_typed_values() -> None:
    c = cfg("--heartbeat-interval", "50", "--election-timeout", "500", "--quota-backend-bytes", "-1",
            "--experimental-watch-progress-notify-interval", "1m30s", "--log-outputs", "stdout,/tmp/x.log",
            "--listen-client-urls", "http://127.0.0.1:1,http://127.0.0.2:2",
            "--advertise-client-urls", "http://127.0.0.1:1")
    assert (c.heartbeat_interval, c.election_timeout, c.quota_backend_bytes) == (50, 500, -1)
    assert c.experimental_watch_progress_notify_interval == 90.0
    assert c.log_outputs == ("stdout", "/tmp/x.log")
    assert c.listen_client_urls == ("http://127.0.0.1:1", "http://127.0.0.2:2")
    assert c.effective_quota_backend_bytes == 2 * 1024**3


USAGE_ERRORS = [
    (["--bogus"], "flag provided but not defined: -bogus"),
    (["--listen-client-urls", "foo"],
     'invalid value "foo" for flag -listen-client-urls: URL scheme must be http, https, unix, or unixs: foo'),
    (["--listen-client-urls", "http://127.0.0.1:2379/x"],
     'invalid value "http://127.0.0.1:2379/x" for flag -listen-client-urls: URL must not contain a path: '
     "http://127.0.0.1:2379/x"),
    (["--listen-client-urls", "http://127.0.0.1"],
     'invalid value "http://127.0.0.1" for flag -listen-client-urls: URL address does not have the form '
     '"host:port": http://127.0.0.1'),
    (["--listen-peer-urls", "ftp://127.0.0.1:2380"],
     'invalid value "ftp://127.0.0.1:2380" for flag -listen-peer-urls: URL scheme must be http, https, unix, '
     "or unixs: ftp://127.0.0.1:2380"),
    (["--heartbeat-interval", "abc"], 'invalid value "abc" for flag -heartbeat-interval: parse error'),
    (["--snapshot-count", "-1"], 'invalid value "-1" for flag -snapshot-count: parse error'),
    (["--initial-cluster-state", "foo"],
     'invalid value "foo" for flag -initial-cluster-state: invalid value'),
    (["--enable-v2=yes"], 'invalid boolean value "yes" for -enable-v2: parse error'),
    (["--experimental-watch-progress-notify-interval", "abc"],
     'invalid value "abc" for flag -experimental-watch-progress-notify-interval: parse error'),
    (["--name"], "flag needs an argument: -name"),
    (["---name", "x"], "bad flag syntax: ---name"),
]


@pytest.mark.parametrize(("argv", "message"), USAGE_ERRORS)
def test_usage_errors_use_go_flag_wording(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        load(argv, {})
    assert str(info.value) == message


# ---------------------------------------------------------------- verification (etcd's Validate)

CONFIG_ERRORS = [
    (["--election-timeout", "10", "--heartbeat-interval", "100"],
     "--election-timeout[10ms] should be at least as 5 times as --heartbeat-interval[100ms]"),
    (["--election-timeout", "60000"],
     "--election-timeout[60000ms] is too long, and should be set less than 50000ms"),
    (["--heartbeat-interval", "0"], "--heartbeat-interval must be >0 (set to 0ms)"),
    (["--election-timeout", "0"], "--election-timeout must be >0 (set to 0ms)"),
    (["foo"], "'foo' is not a valid flag"),
    (["--enable-v2", "yes"], "'yes' is not a valid flag"),
    (["--listen-client-urls", "http://127.0.0.1:12379"],
     "--advertise-client-urls is required when --listen-client-urls is set explicitly"),
    (["--listen-client-urls", "http://foo.example:12379", "--advertise-client-urls", "http://127.0.0.7:1"],
     "expected IP in URL for binding (http://foo.example:12379)"),
    (["--advertise-client-urls", "http://:12379"],
     '--advertise-client-urls "http://:12379" must be "host:port" (unexpected empty host (http://:12379))'),
    (["--discovery", "http://127.0.0.1:1/v2/keys/d/t", "--initial-cluster", "default=http://localhost:2380"],
     'multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery" or '
     '"discovery-srv"'),
    (["--discovery", "http://127.0.0.1:1/v2/keys/d/t", "--discovery-srv", "example.com"],
     'multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery" or '
     '"discovery-srv"'),
    (["--auto-compaction-mode", "foo"], 'unknown auto-compaction-mode "foo"'),
    (["--auto-compaction-retention", "abc"],
     'error parsing CompactionRetention: time: invalid duration "abc"'),
    (["--logger", "capnslog"], "--logger=capnslog is removed in v3.5"),
    (["--logger", "foo"], 'unknown logger option "foo"'),
    (["--log-level", "loud"], 'unknown level "loud"'),
    (["--listen-client-urls", "https://127.0.0.1:12379", "--advertise-client-urls", "https://127.0.0.1:12379"],
     "TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:12379 with "
     "HTTPS scheme"),
    (["--listen-peer-urls", "https://127.0.0.1:12380"],
     "TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url https://127.0.0.1:12380 "
     "with HTTPS scheme"),
]


@pytest.mark.parametrize(("argv", "message"), CONFIG_ERRORS)
def test_verification_errors_use_etcds_wording(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(argv, {})
    assert str(info.value) == message


def test_heartbeat_times_five_equal_to_election_timeout_is_accepted() -> None:
    assert cfg("--election-timeout", "500", "--heartbeat-interval", "100").election_ticks == 5


# ---------------------------------------------------------------- bootstrap (VerifyBootstrap)

P1, P2 = "http://127.0.0.1:12380", "http://127.0.0.2:12380"


@pytest.mark.parametrize(("argv", "message"), [
    (["--name", "foo", "--initial-cluster", f"bar={P1}"],
     'couldn\'t find local name "foo" in the initial cluster configuration'
     "; add foo=http://localhost:2380 to --initial-cluster"),  # etcd's words, then petcd's fix
    (["--initial-cluster", "default=http://localhost:2380,default=http://localhost:2381"],
     "--initial-cluster has default=http://localhost:2381 but missing from "
     '--initial-advertise-peer-urls=http://localhost:2380 (len(["http://localhost:2380"]) != '
     'len(["http://localhost:2380" "http://localhost:2381"]))'),
    (["--initial-advertise-peer-urls", "http://127.0.0.1:2380"],
     "--initial-cluster has default=http://localhost:2380 but missing from "
     '--initial-advertise-peer-urls=http://127.0.0.1:2380 (resolved urls: "http://127.0.0.1:2380" != '
     '"http://localhost:2380")'),
    (["--initial-advertise-peer-urls", f"{P1},{P2}", "--initial-cluster", f"default={P1}"],
     f"--initial-advertise-peer-urls has {P2} but missing from --initial-cluster=default={P1},default={P2}"),
    (["--name", "foo", "--initial-advertise-peer-urls", P1, "--initial-cluster", f"foo={P1},bar={P1}"],
     f"initial cluster bar={P1},foo={P1} has duplicate url"),
    (["--initial-cluster-state", "existing", "--discovery", "http://127.0.0.1:1/v2/keys/d/t"],
     "discovery URL should not be set when joining existing initial cluster"),
    (["--initial-cluster", ""], "initial cluster unset and no discovery URL found"),
])
def test_bootstrap_errors_use_etcds_wording(argv: list[str], message: str) -> None:
    c = cfg(*argv)
    with pytest.raises(ConfigError) as info:
        c.verify_bootstrap()
    assert str(info.value) == message


@pytest.mark.parametrize(("value", "message"), [
    ("default", "error setting up initial cluster: URL scheme must be http, https, unix, or unixs: "),
    ("default=http://localhost:2380,x=foo",
     "error setting up initial cluster: URL scheme must be http, https, unix, or unixs: foo"),
    ("default=http://localhost:2380,x=http://h:1/p",
     "error setting up initial cluster: URL must not contain a path: http://h:1/p"),
])
def test_bad_url_in_initial_cluster(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(["--initial-cluster", value], {})
    assert str(info.value) == message


def test_multiple_peer_urls_for_one_name_are_one_member() -> None:
    c = cfg("--initial-advertise-peer-urls", f"{P2},{P1}", "--initial-cluster", f"default={P1},default={P2}")
    assert c.initial_cluster_members == {"default": (P1, P2)}
    c.verify_bootstrap()


def test_discovery_bootstraps_from_a_temporary_map_of_this_member() -> None:
    c = cfg("--discovery", "http://127.0.0.1:1/v2/keys/d/t")
    assert c.initial_cluster == ""
    assert c.bootstrap_members() == {"default": ("http://localhost:2380",)}
    assert c.bootstrap_token == "http://127.0.0.1:1/v2/keys/d/t"
    c.verify_bootstrap()


def test_srv_discovery_checks_the_members_it_found() -> None:
    c = cfg("--discovery-srv", "example.com")
    with pytest.raises(ConfigError, match="couldn't find local name"):
        c.verify_bootstrap({"infra1": ("http://10.0.0.1:2380",)})
    c.verify_bootstrap({"default": ("http://localhost:2380",), "infra1": ("http://10.0.0.1:2380",)})


def test_a_name_missing_from_initial_cluster_is_refused_with_the_entry_to_add() -> None:
    c = cfg("--name", "etcd04", "--initial-advertise-peer-urls", "http://127.0.0.4:2380,http://10.0.0.4:2380",
            "--initial-cluster", "etcd01=http://127.0.0.1:2380")
    with pytest.raises(ConfigError) as info:
        c.verify_bootstrap()
    assert str(info.value) == (
        'couldn\'t find local name "etcd04" in the initial cluster configuration; add '
        "etcd04=http://127.0.0.4:2380,etcd04=http://10.0.0.4:2380 to --initial-cluster")


# ---------------------------------------------------------------- the seed article's pitfalls


def test_advertised_loopback_client_url_must_be_served() -> None:
    with pytest.raises(ConfigError) as info:
        load(["--listen-client-urls", "http://192.0.2.10:2379",
              "--advertise-client-urls", "http://192.0.2.10:2379,http://127.0.0.1:2379"], {})
    assert str(info.value) == (
        "--advertise-client-urls has http://127.0.0.1:2379 but no --listen-client-urls serves it "
        "(listening on http://192.0.2.10:2379); add http://127.0.0.1:2379 to --listen-client-urls")


@pytest.mark.parametrize("listen", ["http://0.0.0.0:2379", "http://127.0.0.1:2379", "http://localhost:2379"])
def test_advertised_loopback_is_served_by_wildcard_or_loopback(listen: str) -> None:
    cfg("--listen-client-urls", listen, "--advertise-client-urls", "http://127.0.0.1:2379")


def test_no_loopback_listener_warns_with_the_url_to_add() -> None:
    loaded = load(["--listen-client-urls", "http://192.0.2.51:2379",
                   "--advertise-client-urls", "http://192.0.2.51:2379"], {})
    assert any("add http://127.0.0.1:2379 to --listen-client-urls" in w for w in loaded.warnings)
    quiet = load(["--listen-client-urls", "http://0.0.0.0:2379", "--advertise-client-urls", "http://192.0.2.51:2379"],
                 {})
    assert not any("--listen-client-urls" in w for w in quiet.warnings)


def test_proxy_variables_warn() -> None:
    loaded = load([], {"http_proxy": "10.212.52.25:3128", "https_proxy": "10.212.52.25:3128"})
    [warning] = [w for w in loaded.warnings if "proxy" in w]
    assert "http_proxy, https_proxy" in warning
    assert not [w for w in load([], {}).warnings if "proxy" in w]


# ---------------------------------------------------------------- environment


def test_environment_sets_unset_flags() -> None:
    c = cfg(env={"ETCD_NAME": "etcd01", "ETCD_DATA_DIR": "/var/lib/etcd/default.etcd",
                 "ETCD_INITIAL_CLUSTER_TOKEN": "etcd-cluster2", "ETCD_ENABLE_V2": "true",
                 "ETCD_INITIAL_ADVERTISE_PEER_URLS": "http://127.0.0.1:2380",
                 "ETCD_INITIAL_CLUSTER": "etcd01=http://127.0.0.1:2380"})
    assert (c.name, c.data_dir, c.initial_cluster_token, c.enable_v2) == (
        "etcd01", "/var/lib/etcd/default.etcd", "etcd-cluster2", True)
    assert "initial-cluster" in c.explicit
    c.verify_bootstrap()


def test_environment_and_flag_for_the_same_setting_conflict() -> None:
    with pytest.raises(ConfigError) as info:
        load(["--name", "x"], {"ETCD_NAME": "y"})
    assert str(info.value) == ('conflicting environment variable "ETCD_NAME" is shadowed by corresponding '
                               "command-line flag (either unset environment variable or disable flag)")


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load([], {"ETCD_HEARTBEAT_INTERVAL": "abc"})
    assert str(info.value) == 'invalid value "abc" for ETCD_HEARTBEAT_INTERVAL: parse error'


def test_unknown_etcd_variable_warns() -> None:
    loaded = load([], {"ETCD_BOGUS": "y", "ETCDCTL_API": "3", "ETCD_UNSUPPORTED_ARCH": "arm64"})
    assert "unrecognized environment variable ETCD_BOGUS=y" in loaded.warnings
    assert not any("ETCDCTL_API" in w or "ARCH" in w for w in loaded.warnings)


# ---------------------------------------------------------------- config file

YAML = """
name: infra0
data-dir: /var/lib/etcd
heartbeat-interval: 200
election-timeout: 2000
listen-peer-urls: http://127.0.0.1:12380
listen-client-urls: http://127.0.0.1:12379,http://127.0.0.2:12379
advertise-client-urls: http://127.0.0.1:12379
initial-advertise-peer-urls: http://127.0.0.1:12380
initial-cluster: infra0=http://127.0.0.1:12380,infra1=http://127.0.0.2:12380
initial-cluster-token: cluster-etcd
initial-cluster-state: existing
auto-compaction-retention: "24"
enable-v2: true
log-outputs: [stdout]
strict-reconfig-check: false
a-key-etcd-does-not-know: 1
client-transport-security:
  cert-file: /etc/etcd/server.crt
  key-file: /etc/etcd/server.key
  client-cert-auth: true
  trusted-ca-file: /etc/etcd/ca.crt
peer-transport-security:
  auto-tls: true
"""


def load_file(text: str, argv: list[str] | None = None, env: dict[str, str] | None = None) -> Config:
    files = {"/etc/etcd/etcd.yml": text}
    loaded = load(argv or ["--config-file", "/etc/etcd/etcd.yml"], env or {}, read_file=files.__getitem__)
    assert loaded.config is not None
    return loaded.config


def test_config_file_in_etcds_yaml_format() -> None:
    c = load_file(YAML)
    assert (c.name, c.data_dir) == ("infra0", "/var/lib/etcd")
    assert (c.heartbeat_interval, c.election_timeout) == (200, 2000)
    assert c.listen_client_urls == ("http://127.0.0.1:12379", "http://127.0.0.2:12379")
    assert c.initial_cluster_members == {"infra0": ("http://127.0.0.1:12380",),
                                         "infra1": ("http://127.0.0.2:12380",)}
    assert (c.initial_cluster_state, c.enable_v2, c.strict_reconfig_check) == ("existing", True, False)
    assert c.auto_compaction == ("periodic", 24 * 3600.0)
    assert c.log_outputs == ("stdout",)
    assert c.client_tls == config.TLSInfo(cert_file="/etc/etcd/server.crt", key_file="/etc/etcd/server.key",
                                          client_cert_auth=True, trusted_ca_file="/etc/etcd/ca.crt")
    assert c.peer_tls.auto_tls
    assert c.config_file == "/etc/etcd/etcd.yml"


def test_config_file_makes_flags_and_environment_ignored() -> None:
    c = load_file(YAML, ["--config-file", "/etc/etcd/etcd.yml", "--name", "flagname"],
                  {"ETCD_NAME": "envname", "ETCD_HEARTBEAT_INTERVAL": "7"})
    assert (c.name, c.heartbeat_interval) == ("infra0", 200)


def test_config_file_from_the_environment() -> None:
    c = load_file(YAML, [], {"ETCD_CONFIG_FILE": "/etc/etcd/etcd.yml"})
    assert c.name == "infra0"


def test_config_file_listening_without_advertising_keeps_the_default() -> None:
    c = load_file("listen-client-urls: http://127.0.0.1:2379\n")
    assert c.advertise_client_urls == ("http://localhost:2379",)


@pytest.mark.parametrize(("text", "message"), [
    ("name: [a\n", "error converting YAML to JSON: yaml:"),
    ("heartbeat-interval: abc\n",
     "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string into Go struct field "
     "configYAML.heartbeat-interval of type uint"),
    ("enable-v2: 3\n", "cannot unmarshal number into Go struct field configYAML.enable-v2 of type bool"),
    ("listen-client-urls: foo\n",
     "unexpected error setting up listen-client-urls: URL scheme must be http, https, unix, or unixs: foo"),
    ("- a\n- b\n", "cannot unmarshal array into Go value of type embed.configYAML"),
    ("election-timeout: 10\n",
     "--election-timeout[10ms] should be at least as 5 times as --heartbeat-interval[100ms]"),
])
def test_config_file_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_file(text)
    assert message in str(info.value)


def test_missing_config_file() -> None:
    def absent(path: str) -> str:
        raise FileNotFoundError(2, "No such file or directory", path)

    with pytest.raises(ConfigError) as info:
        load(["--config-file", "/nonexistent.yml"], {}, read_file=absent)
    assert str(info.value) == "open /nonexistent.yml: no such file or directory"


# ---------------------------------------------------------------- values


@pytest.mark.parametrize(("text", "seconds"), [
    ("0", 0.0), ("10m", 600.0), ("1h30m", 5400.0), ("100ms", 0.1), ("1.5s", 1.5), ("-2s", -2.0),
    ("250us", 250e-6),
])
def test_go_durations(text: str, seconds: float) -> None:
    assert config.parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "10", "1x", "h", "1h 2m", "--1s"])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(ValueError, match="time: invalid duration"):
        config.parse_go_duration(text)


@pytest.mark.parametrize(("mode", "retention", "expected"), [
    ("periodic", "0", ("periodic", 0.0)),
    ("periodic", "1", ("periodic", 3600.0)),
    ("periodic", "30m", ("periodic", 1800.0)),
    ("revision", "1000", ("revision", 1000.0)),
])
def test_auto_compaction(mode: str, retention: str, expected: tuple[str, float]) -> None:
    c = cfg("--auto-compaction-mode", mode, "--auto-compaction-retention", retention)
    assert c.auto_compaction == expected


def test_help_lists_every_flag_with_its_default() -> None:
    text = config.help_text()
    for option in config.OPTIONS:
        assert f"  --{option.name} '" in text
    assert "--data-dir '${name}.etcd'" in text
    headers = [line for line in text.splitlines() if line.endswith(":") and not line.startswith(" ")]
    assert headers[0] == "Usage:"
    assert len(headers) == len(set(headers))  # each section once


def test_help_and_version_commands() -> None:
    assert load(["--help"], {}).command == "help"
    assert load(["-h"], {}).command == "help"
    assert load(["--version"], {}).command == "version"


def test_log_fields_name_every_setting() -> None:
    fields = config.as_log_fields(cfg("--name", "m1"))
    assert fields["name"] == "m1"
    assert fields["initial-cluster"] == "m1=http://localhost:2380"
    assert "explicit" not in fields


def test_etcd35_flags_are_accepted() -> None:
    c = cfg("--unsafe-no-fsync", "--socket-reuse-port", "--experimental-compact-hash-check-time", "2m",
            "--v2-deprecation", "write-only", "--max-concurrent-streams", "100",
            "--enable-grpc-gateway=false")
    assert (c.unsafe_no_fsync, c.socket_reuse_port) == (True, True)
    assert c.experimental_compact_hash_check_time == 120.0
    assert (c.v2_deprecation, c.max_concurrent_streams, c.enable_grpc_gateway) == ("write-only", 100, False)
    assert cfg().max_concurrent_streams == 2**32 - 1


def test_debug_means_debug_level() -> None:
    assert cfg("--debug").log_level == "debug"


def test_v2_proxy_mode_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"--proxy=on: etcd's v2 proxy mode is not supported by petcd"):
        load(["--proxy", "on"], {})
