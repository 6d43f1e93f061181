"""petcd.cli: the `petcd` command's answers before the server starts (help, version, refusals)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from petcd import cli, config


def run(argv: list[str], capsys: pytest.CaptureFixture[str], env: dict[str, str] | None = None
        ) -> tuple[int, str, str]:
    status = cli.main(argv, env or {})
    out, err = capsys.readouterr()
    return status, out, err


def test_version_is_laid_out_like_etcds(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(["--version"], capsys)
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "petcd Version", "etcd API Version", "Git SHA", "Python Version", "Python OS/Arch"]
    assert lines[0] == "petcd Version: 0.1.0"
    assert lines[1] == "etcd API Version: 3.5"


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(["--help"], capsys)
    assert status == 0
    assert out.startswith("Usage:")
    assert "--initial-cluster-token 'etcd-cluster'" in out


@pytest.mark.parametrize(("argv", "status", "line"), [
    (["--bogus"], 2, "petcd: flag provided but not defined: -bogus. See 'petcd --help'."),
    (["--election-timeout", "10"], 1,
     "petcd: error verifying flags, --election-timeout[10ms] should be at least as 5 times as "
     "--heartbeat-interval[100ms]. See 'petcd --help'."),
    (["snapshots", "save", "x.db"], 1, "petcd: error verifying flags, 'snapshots' is not a valid flag. "
                                       "See 'petcd --help'."),
])
def test_refusals_are_one_line(argv: list[str], status: int, line: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    got_status, out, err = run(argv, capsys)
    assert (got_status, out, err) == (status, "", line + "\n")


def test_refused_bootstrap_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = tmp_path / "foo.etcd"
    status, _, err = run(["--name", "foo", "--data-dir", str(data_dir),
                          "--initial-cluster", "bar=http://127.0.0.1:12380"], capsys)
    assert status == 1
    assert err.splitlines()[-1] == ('petcd: error verifying flags, couldn\'t find local name "foo" in the '
                                    "initial cluster configuration; add foo=http://localhost:2380 to "
                                    "--initial-cluster. See 'petcd --help'.")
    assert not data_dir.exists()
    assert os.listdir(tmp_path) == []


def test_bootstrap_settings_are_ignored_once_a_wal_exists(tmp_path: Path) -> None:
    loaded = config.load(["--name", "foo", "--data-dir", str(tmp_path / "d"),
                              "--initial-cluster", "bar=http://127.0.0.1:12380"], {})
    assert loaded.config is not None
    with pytest.raises(config.ConfigError):
        cli.check_startable(loaded.config)
    (tmp_path / "d" / "member" / "wal").mkdir(parents=True)
    (tmp_path / "d" / "member" / "wal" / "0000000000000000-0000000000000000.wal").write_bytes(b"x")
    cli.check_startable(loaded.config)


def test_peer_tls_is_refused_until_served(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flags = ["--data-dir", str(tmp_path / "d"), "--peer-cert-file", "/x.crt", "--peer-key-file", "/x.key"]
    status, _, err = run(flags, capsys)
    assert status == 1
    refusal = "TLS is not supported by this petcd version yet (--peer-cert-file/--peer-key-file)"
    assert refusal in err.splitlines()[-1]
    assert not (tmp_path / "d").exists()


def test_start_warnings_are_json_log_lines_with_the_member_name(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(["--name", "foo", "--data-dir", str(tmp_path / "d"),
                          "--initial-cluster", "bar=http://127.0.0.1:12380"], capsys,
                         env={"http_proxy": "10.0.0.1:3128"})
    assert status == 1
    logged = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    proxy = [entry for entry in logged if "proxy" in entry["msg"]]
    assert proxy and proxy[0]["level"] == "warn" and proxy[0]["name"] == "foo"
    assert proxy[0]["caller"].startswith("cli.py:")


def test_subcommands_get_their_own_arguments(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[tuple[list[str], dict[str, str]]] = []

    def snapshot(args: Sequence[str], environ: Mapping[str, str]) -> int:
        seen.append((list(args), dict(environ)))
        return 3

    monkeypatch.setitem(cli.SUBCOMMANDS, "snapshot", snapshot)
    assert cli.main(["snapshot", "save", "--bogus", "x.db"], {"ETCDCTL_API": "3"}) == 3
    assert seen == [(["save", "--bogus", "x.db"], {"ETCDCTL_API": "3"})]


def test_unwritable_log_output_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(["--data-dir", str(tmp_path / "d"), "--log-outputs", str(tmp_path / "no" / "x.log")],
                         capsys)
    assert status == 1
    assert err.startswith("petcd: error verifying flags, cannot open --log-outputs: ")
    assert not (tmp_path / "d").exists()


def test_a_port_in_use_is_refused_before_the_data_dir_exists(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        status, _, err = run(["--data-dir", str(tmp_path / "d"), "--listen-client-urls", url,
                              "--advertise-client-urls", url], capsys)
    assert status == 1
    assert err.splitlines()[-1] == (f"petcd: listen tcp 127.0.0.1:{port}: bind: address already in use; "
                                    "stop the other process or choose another port with --listen-client-urls")
    assert not (tmp_path / "d").exists()


def test_the_same_port_for_clients_and_peers_is_refused(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    flags = ["--data-dir", str(tmp_path / "d"), "--listen-client-urls", url, "--advertise-client-urls", url,
             "--listen-peer-urls", url, "--initial-advertise-peer-urls", url,
             "--initial-cluster", f"default={url}"]
    status, _, err = run(flags, capsys)
    assert status == 1
    assert err.splitlines()[-1] == (f"petcd: listen tcp 127.0.0.1:{port}: bind: address already in use; "
                                    "stop the other process or choose another port with --listen-client-urls")


def test_unserved_http_only_client_urls_are_refused(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(["--data-dir", str(tmp_path / "d"), "--listen-client-http-urls", "http://127.0.0.1:1"],
                         capsys)
    assert status == 1
    assert "--listen-client-http-urls is not supported by this petcd version yet" in err.splitlines()[-1]
