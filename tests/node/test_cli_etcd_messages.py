"""The same refused command lines given to Debian's etcd and to petcd: same error text, same exit status.

etcd prints its error either as a Go flag-parser line (exit 2) or inside a zap JSON log line's "error"
field (exit 1); petcd prints one plain line. The test extracts etcd's text and compares it with petcd's.
Every case is refused before anything listens, except the bootstrap ones, which use free ports on
127.0.0.x.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ETCD = shutil.which("etcd")
pytestmark = pytest.mark.skipif(ETCD is None, reason="Debian's etcd-server is not installed")

PETCD_PREFIXES = ("petcd: error verifying flags, ", "petcd: ")
PETCD_SUFFIX = ". See 'petcd --help'."
PETCD_FIXES = ("; add ", "; stop the other process")  # how petcd's fix sentences begin


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ETCD_")}
    return subprocess.run(command, cwd=cwd, env={**base, **env}, capture_output=True, text=True, timeout=30,
                          start_new_session=True)


def etcd_error(result: subprocess.CompletedProcess[str]) -> str:
    """etcd's error text: the "error" of its first failing zap line, else its first output line."""
    for line in (result.stderr + result.stdout).splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if "error" in entry and entry.get("level") in ("warn", "error", "fatal"):
                return str(entry["error"])
        elif " E | etcdmain: error verifying flags, " in line:
            return line.split("error verifying flags, ", 1)[1].removesuffix(". See 'etcd --help'.")
        elif " C | pkg/flags: " in line:
            return line.split(" C | pkg/flags: ", 1)[1]
    return (result.stderr + result.stdout).splitlines()[0]


def petcd_error(result: subprocess.CompletedProcess[str]) -> str:
    """petcd's error text up to the fix petcd appends to some of etcd's messages (issue 12): that
    part must be etcd's own words."""
    [line] = [line for line in result.stderr.splitlines() if line.startswith("petcd: ")]
    for prefix in PETCD_PREFIXES:
        if line.startswith(prefix):
            text = line[len(prefix):].removesuffix(PETCD_SUFFIX)
            return min((text[:text.index(fix)] for fix in PETCD_FIXES if fix in text), key=len, default=text)
    raise AssertionError(line)


def bootstrap_flags(host: str = "127.0.0.66") -> list[str]:
    client, peer = f"http://{host}:{free_port(host)}", f"http://{host}:{free_port(host)}"
    return ["--listen-client-urls", client, "--advertise-client-urls", client, "--listen-peer-urls", peer]


CASES: list[tuple[str, list[str], dict[str, str]]] = [
    ("election", ["--election-timeout", "10", "--heartbeat-interval", "100"], {}),
    ("election-too-long", ["--election-timeout", "60000"], {}),
    ("zero-heartbeat", ["--heartbeat-interval", "0"], {}),
    ("unknown-flag", ["--bogus"], {}),
    ("bad-scheme", ["--listen-client-urls", "foo"], {}),
    ("url-path", ["--listen-client-urls", "http://127.0.0.1:2379/x"], {}),
    ("url-no-port", ["--listen-client-urls", "http://127.0.0.1"], {}),
    ("bad-bool", ["--enable-v2=yes"], {}),
    ("bad-uint", ["--heartbeat-interval", "abc"], {}),
    ("negative-uint", ["--snapshot-count", "-1"], {}),
    ("bad-choice", ["--initial-cluster-state", "foo"], {}),
    ("bad-duration", ["--experimental-watch-progress-notify-interval", "abc"], {}),
    ("stray-argument", ["foo"], {}),
    ("env-shadowed", ["--name", "x"], {"ETCD_NAME": "y"}),
    ("bad-env", [], {"ETCD_HEARTBEAT_INTERVAL": "abc"}),
    ("listen-no-advertise", ["--listen-client-urls", "http://127.0.0.66:12379"], {}),
    ("bind-hostname", ["--listen-client-urls", "http://foo.example:12379",
                       "--advertise-client-urls", "http://127.0.0.66:12379"], {}),
    ("advertise-empty-host", ["--advertise-client-urls", "http://:12379"], {}),
    ("two-bootstraps", ["--discovery", "http://127.0.0.66:1/v2/keys/d/t",
                        "--initial-cluster", "default=http://localhost:2380"], {}),
    ("compaction-mode", ["--auto-compaction-mode", "foo"], {}),
    ("logger", ["--logger", "foo"], {}),
]


@pytest.fixture(params=["etcd34", "etcd35"])
def etcd_program(request: pytest.FixtureRequest) -> str:
    """Debian's etcd 3.4 and, where it is built, etcd 3.5: petcd must say what both say."""
    from harness import IMPLEMENTATIONS

    implementation = IMPLEMENTATIONS[request.param]
    implementation.require()
    return implementation.argv[0]


@pytest.mark.parametrize(("argv", "env"), [(a, e) for _, a, e in CASES], ids=[c[0] for c in CASES])
def test_refusals_match_etcd(argv: list[str], env: dict[str, str], tmp_path: Path, etcd_program: str) -> None:
    if env and "3.5" in etcd_program and "--name" in argv:
        pytest.skip("etcd 3.5 moved the shadowed variable's name out of the message into a log field")
    (tmp_path / "etcd").mkdir()
    (tmp_path / "petcd").mkdir()
    zap = ["--logger", "zap"] if "--logger" not in argv else []
    etcd = run([etcd_program, *argv, *zap], tmp_path / "etcd", env)
    petcd = run([sys.executable, "-m", "petcd.cli", *argv], tmp_path / "petcd", env)
    assert petcd.returncode == etcd.returncode, (etcd.stderr, petcd.stderr)
    assert petcd_error(petcd) == etcd_error(etcd)
    assert os.listdir(tmp_path / "petcd") == []


P1 = "http://127.0.0.66:12380"
BOOTSTRAP_CASES: list[tuple[str, list[str]]] = [
    ("local-name-missing", ["--name", "foo", "--initial-cluster", f"bar={P1}"]),
    ("advertise-count", ["--initial-advertise-peer-urls", P1,
                         "--initial-cluster", f"default={P1},default=http://127.0.0.66:12381"]),
    ("advertise-mismatch", ["--initial-advertise-peer-urls", P1,
                            "--initial-cluster", "default=http://127.0.0.67:12380"]),
    ("duplicate-url", ["--name", "foo", "--initial-advertise-peer-urls", P1,
                       "--initial-cluster", f"foo={P1},bar={P1}"]),
    ("existing-with-discovery", ["--initial-cluster-state", "existing",
                                 "--discovery", "http://127.0.0.66:1/v2/keys/d/t"]),
    ("auto-compaction-retention", ["--auto-compaction-retention", "abc"]),
    ("initial-cluster-without-url", ["--initial-cluster", "default"]),
    ("initial-cluster-bad-url", ["--initial-advertise-peer-urls", P1,
                                 "--initial-cluster", f"default={P1},x=foo"]),
]


@pytest.mark.parametrize("argv", [a for _, a in BOOTSTRAP_CASES], ids=[c[0] for c in BOOTSTRAP_CASES])
def test_bootstrap_refusals_match_etcd(argv: list[str], tmp_path: Path, etcd_program: str) -> None:
    (tmp_path / "etcd").mkdir()
    (tmp_path / "petcd").mkdir()
    listeners = bootstrap_flags()
    etcd = run([etcd_program, *argv, *listeners, "--logger", "zap"], tmp_path / "etcd", {})
    petcd = run([sys.executable, "-m", "petcd.cli", *argv, *listeners], tmp_path / "petcd", {})
    assert (etcd.returncode, petcd.returncode) == (1, 1), (etcd.stderr, petcd.stderr)
    assert petcd_error(petcd) == etcd_error(etcd)
    # etcd leaves a data directory behind after refusing; petcd writes nothing.
    assert os.listdir(tmp_path / "petcd") == []


def test_config_file_errors_match_etcd(tmp_path: Path) -> None:
    for index, text in enumerate(["name: [a\n", "heartbeat-interval: abc\n", "election-timeout: 10\n"]):
        path = tmp_path / f"c{index}.yml"
        path.write_text(text + "logger: zap\n")
        (tmp_path / f"e{index}").mkdir()
        (tmp_path / f"p{index}").mkdir()
        etcd = run([str(ETCD), "--config-file", str(path)], tmp_path / f"e{index}", {})
        petcd = run([sys.executable, "-m", "petcd.cli", "--config-file", str(path)],
                    tmp_path / f"p{index}", {})
        assert (etcd.returncode, petcd.returncode) == (1, 1)
        expected, got = etcd_error(etcd), petcd_error(petcd)
        if text.startswith("name: ["):
            # Go's YAML parser and PyYAML describe a syntax error differently; the prefix is etcd's.
            assert got.startswith("error converting YAML to JSON: yaml: ")
            assert expected.startswith("error converting YAML to JSON: yaml: ")
        else:
            assert got == expected


def test_version_layout_matches_etcd(tmp_path: Path) -> None:
    etcd = run([str(ETCD), "--version"], tmp_path, {})
    petcd = run([sys.executable, "-m", "petcd.cli", "--version"], tmp_path, {})
    assert etcd.returncode == petcd.returncode == 0
    etcd_keys = [line.split(":")[0] for line in etcd.stdout.splitlines()]
    petcd_keys = [line.split(":")[0] for line in petcd.stdout.splitlines()]
    assert etcd_keys == ["etcd Version", "Git SHA", "Go Version", "Go OS/Arch"]
    assert petcd_keys == ["petcd Version", "etcd API Version", "Git SHA", "Python Version", "Python OS/Arch"]
    assert etcd.stdout.splitlines()[-1].split(": ")[1] == petcd.stdout.splitlines()[-1].split(": ")[1]


def test_a_port_in_use_is_refused_like_etcd(tmp_path: Path) -> None:
    host = "127.0.0.66"
    with socket.socket() as busy:
        busy.bind((host, 0))
        busy.listen()
        client = f"http://{host}:{busy.getsockname()[1]}"
        peer = f"http://{host}:{free_port(host)}"
        flags = ["--listen-client-urls", client, "--advertise-client-urls", client,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", f"default={peer}"]
        (tmp_path / "etcd").mkdir()
        (tmp_path / "petcd").mkdir()
        etcd = run([str(ETCD), *flags, "--logger", "zap"], tmp_path / "etcd", {})
        petcd = run([sys.executable, "-m", "petcd.cli", *flags], tmp_path / "petcd", {})
    assert (etcd.returncode, petcd.returncode) == (1, 1)
    expected = f"listen tcp {client.removeprefix('http://')}: bind: address already in use"
    assert petcd_error(petcd) == etcd_error(etcd) == expected
    assert petcd.stderr.rstrip().endswith(
        f"{expected}; stop the other process or choose another port with --listen-client-urls"), petcd.stderr
    assert os.listdir(tmp_path / "etcd") == os.listdir(tmp_path / "petcd") == []


@pytest.mark.parametrize("implementation", ["etcd34", "etcd35"])
def test_every_etcd_flag_is_accepted(implementation: str) -> None:
    """Each flag `etcd --help` lists is one petcd parses (even where it only records it)."""
    from harness import IMPLEMENTATIONS
    from petcd.config import OPTION_BY_NAME

    etcd = IMPLEMENTATIONS[implementation]
    etcd.require()
    result = subprocess.run([etcd.argv[0], "--help"], capture_output=True, text=True, timeout=30)
    listed = [line.split()[0][2:] for line in (result.stdout + result.stderr).splitlines()
              if line.startswith("  --")]
    assert len(listed) >= 80  # 3.4 lists 80, 3.5 more
    commands = ("version", "config-file")
    unknown = [name for name in listed if name not in OPTION_BY_NAME and name not in commands]
    assert unknown == []
