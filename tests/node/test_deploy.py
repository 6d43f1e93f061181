"""deploy/: the systemd unit, its environment file and the YAML config start the seed article's
cluster; the walkthroughs show these files as they are; the Procfile launcher behind `make cluster`.

The article's three members (etcd01-03 on 192.168.122.51-53, ports 2379/2380) run in a private
network namespace whose loopback carries those addresses: etcd01 through the unit's ExecStart with
the environment file's variables and NOTIFY_SOCKET set by the test (a unix datagram socket the test
reads READY=1 from), etcd02 from the environment file alone, etcd03 from the YAML file. What the
test changes in the files is what the files tell a reader to change on each machine (name and own
address), the data dir (under the test's directory) and 0.0.0.0, which on one machine each member
replaces by its own address.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import yaml
from test_walkthrough import DOCS, WALKTHROUGHS, Session, fenced_blocks, require_namespaces

REPOSITORY = Path(__file__).resolve().parents[2]
DEPLOY = REPOSITORY / "deploy"
ARTICLE_ADDRESS = "192.168.122.5{}"
READY_TIMEOUT_SECONDS = 60.0
sys.path.insert(0, str(DEPLOY))
from procfile import parse_procfile, prefix  # noqa: E402  (deploy/ is not a package)

# --------------------------------------------------------------------------------------------------
# Pure: systemd's unit and environment files


def unit_settings(text: str, section: str) -> dict[str, list[str]]:
    """The settings of one [section] of a systemd unit: name -> every value given (in order)."""
    settings: dict[str, list[str]] = {}
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            continue
        if current == section:
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def environment_file(text: str) -> dict[str, str]:
    """systemd's EnvironmentFile=: `KEY=value` lines, comments skipped, one level of quotes removed."""
    values = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, separator, value = line.partition("=")
        if not separator:
            raise ValueError(f"not an assignment: {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def exec_start_argv(line: str, environ: Mapping[str, str]) -> list[str]:
    """systemd's ExecStart= words: `$NAME` alone is split into words, `${NAME}` is substituted in
    place; a leading `-`, `@`, `+` or `!` prefix is dropped."""
    line = line.lstrip("-@+!")
    argv: list[str] = []
    for word in shlex.split(line):
        whole = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if whole:
            argv.extend(environ.get(whole.group(1), "").split())
            continue
        argv.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: environ.get(m.group(1), ""), word))
    return argv


def for_member(values: Mapping[str, str], number: int, initial_cluster_key: str,
               data_root: Path) -> dict[str, str]:
    """etcd01's settings turned into member `number`'s on this machine: its name and own address
    everywhere but in the initial cluster, 0.0.0.0 replaced by its own address, the data dir moved
    under `data_root`."""
    own = ARTICLE_ADDRESS.format(number)
    result = {}
    for key, value in values.items():
        if key != initial_cluster_key:
            value = value.replace("etcd01", f"etcd0{number}").replace(ARTICLE_ADDRESS.format(1), own)
            value = value.replace("0.0.0.0", own)
        result[key] = value.replace("/var/lib/petcd", str(data_root / f"etcd0{number}"))
    return result


def test_unit_and_environment_file_parsing() -> None:
    unit = "[Unit]\nAfter=a\nAfter=b\n[Service]\n# c\nType=notify\nExecStart=/bin/x --n=${N} $ARGS\n"
    assert unit_settings(unit, "Unit") == {"After": ["a", "b"]}
    service = unit_settings(unit, "Service")
    argv = exec_start_argv(service["ExecStart"][0], {"N": "a b", "ARGS": "-x  -y"})
    assert argv == ["/bin/x", "--n=a b", "-x", "-y"]
    assert environment_file('# c\nA="x y"\nB=\'z\'\nC=plain\n') == {"A": "x y", "B": "z", "C": "plain"}
    two = for_member({"ETCD_NAME": "etcd01", "ETCD_INITIAL_CLUSTER": "etcd01=http://192.168.122.51:2380",
                      "ETCD_LISTEN_PEER_URLS": "http://0.0.0.0:2380"}, 2, "ETCD_INITIAL_CLUSTER", Path("/d"))
    assert two == {"ETCD_NAME": "etcd02", "ETCD_INITIAL_CLUSTER": "etcd01=http://192.168.122.51:2380",
                   "ETCD_LISTEN_PEER_URLS": "http://192.168.122.52:2380"}


# --------------------------------------------------------------------------------------------------
# The files as the documents show them


@pytest.mark.parametrize("document", WALKTHROUGHS)
def test_documents_show_the_deploy_files_as_they_are(document: str) -> None:
    shown = {info.split("file=", 1)[1]: body for _, info, body in
             fenced_blocks((DOCS / document).read_text(encoding="utf-8")) if "file=" in info}
    assert sorted(shown) == ["deploy/petcd.conf", "deploy/petcd.conf.yml", "deploy/petcd.service"]
    for name, body in shown.items():
        assert body == (REPOSITORY / name).read_text(encoding="utf-8"), f"{document} shows an old {name}"


def test_environment_file_has_every_variable_the_article_sets() -> None:
    article = {"ETCD_NAME", "ETCD_DATA_DIR", "ETCD_LISTEN_PEER_URLS", "ETCD_LISTEN_CLIENT_URLS",
               "ETCD_INITIAL_ADVERTISE_PEER_URLS", "ETCD_INITIAL_CLUSTER", "ETCD_INITIAL_CLUSTER_STATE",
               "ETCD_INITIAL_CLUSTER_TOKEN", "ETCD_ADVERTISE_CLIENT_URLS"}
    values = environment_file((DEPLOY / "petcd.conf").read_text())
    assert set(values) == article
    service = unit_settings((DEPLOY / "petcd.service").read_text(), "Service")
    assert service["Type"] == ["notify"]
    assert [Path(v.lstrip("-")).name for v in service["EnvironmentFile"]] == ["petcd.conf"]
    config = yaml.safe_load((DEPLOY / "petcd.conf.yml").read_text())
    assert {f"ETCD_{k.upper().replace('-', '_')}": str(v) for k, v in config.items()} == values


# --------------------------------------------------------------------------------------------------
# Starting them


@pytest.fixture(scope="module")
def namespaces() -> None:
    require_namespaces()


@pytest.fixture
def session(namespaces: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Session, Path]]:
    workdir = tmp_path_factory.mktemp("dep")
    shell = Session(workdir)
    try:
        yield shell, workdir
    finally:
        shell.close()
        if not os.environ.get("PETCD_KEEP_SANDBOX"):
            shutil.rmtree(workdir, ignore_errors=True)


def run(shell: Session, script: str) -> str:
    outcome = shell.run(script)
    assert outcome.status == 0 and not outcome.failed_commands, f"{script}\n---\n{outcome.output}"
    return outcome.output


def command(argv: list[str], environ: Mapping[str, str], log: str) -> str:
    """A shell line starting `argv` in the background with exactly these ETCD_* settings added."""
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in environ.items())
    return f"env {assignments} {shlex.join(argv)} > {log} 2>&1 &\n"


def petcd_program(unit_program: str) -> str:
    """The unit names the program by an installed path; the reader sets it to `command -v petcd`."""
    found = shutil.which(Path(unit_program).name)
    if found is None:
        pytest.fail(f"{Path(unit_program).name} is not installed (python3 -m pip install -e .)")
    return found


def test_unit_environment_file_and_yaml_start_the_articles_cluster(session: tuple[Session, Path]) -> None:
    shell, workdir = session
    service = unit_settings((DEPLOY / "petcd.service").read_text(), "Service")
    env_values = environment_file((DEPLOY / "petcd.conf").read_text())
    yaml_values = {k: str(v) for k, v in yaml.safe_load((DEPLOY / "petcd.conf.yml").read_text()).items()}
    run(shell, "".join(f"ip addr add {ARTICLE_ADDRESS.format(n)}/32 dev lo\n" for n in (1, 2, 3)))

    unit_env = for_member(env_values, 1, "ETCD_INITIAL_CLUSTER", workdir)
    [exec_start] = service["ExecStart"]
    argv = exec_start_argv(exec_start, unit_env)
    argv[0] = petcd_program(argv[0])
    node3 = workdir / "etcd03.yml"
    node3.write_text(yaml.safe_dump(for_member(yaml_values, 3, "initial-cluster", workdir)))
    notify_path = str(workdir / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(notify_path)
        notify.settimeout(READY_TIMEOUT_SECONDS)
        run(shell,
            command(argv, {**unit_env, "NOTIFY_SOCKET": notify_path}, "etcd01.log")
            + command(["petcd"], for_member(env_values, 2, "ETCD_INITIAL_CLUSTER", workdir), "etcd02.log")
            + command(["petcd", "--config-file", str(node3)], {}, "etcd03.log"))
        assert notify.recv(4096) == b"READY=1"
    run(shell, "for n in 1 2 3; do\n"
               "  until curl -fs http://192.168.122.5$n:2379/health; do sleep 0.2; done\n"
               "done")
    listing = json.loads(run(shell, "etcdctl --endpoints=http://192.168.122.51:2379 member list -w json"))
    members = {m["name"]: (m["peerURLs"], m["clientURLs"]) for m in listing["members"]}
    assert members == {f"etcd0{n}": ([f"http://192.168.122.5{n}:2380"], [f"http://192.168.122.5{n}:2379"])
                       for n in (1, 2, 3)}
    # each member's data went where its own configuration said
    for n in (1, 2, 3):
        assert (workdir / f"etcd0{n}" / "default.etcd" / "member" / "wal").is_dir()
    # a write through one member is read through another
    assert run(shell, "etcdctl --endpoints=http://192.168.122.53:2379 put k v\n"
                      "etcdctl --endpoints=http://192.168.122.52:2379 get k --print-value-only") == "OK\nv\n"


# --------------------------------------------------------------------------------------------------
# The Procfile and its launcher


def test_procfile_parsing() -> None:
    entries = parse_procfile("# c\n\na: x --y 'z'\nb-2:  sleep 1\n")
    assert [(e.name, e.command) for e in entries] == [("a", "x --y 'z'"), ("b-2", "sleep 1")]
    with pytest.raises(ValueError, match="line 2"):
        parse_procfile("a: x\nnot a process\n")
    with pytest.raises(ValueError, match="defined twice"):
        parse_procfile("a: x\na: y\n")
    assert prefix("a", 6) == "a      | "


def test_launcher_stops_everything_when_one_process_ends(tmp_path: Path) -> None:
    """As foreman: a process that ends stops the others; the first non-zero status is the launcher's."""
    procfile = tmp_path / "Procfile"
    procfile.write_text("sleeper: echo sleeping; sleep 600\nquitter: sleep 1; echo bye; exit 3\n")
    done = subprocess.run([sys.executable, str(DEPLOY / "procfile.py"), str(procfile)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 3, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "sleeper | sleeping" in lines and "quitter | bye" in lines
    assert "quitter | exited with status 3" in lines
    assert f"sleeper | exited with status {-signal.SIGTERM}" in lines


def test_make_cluster_runs_three_members_until_interrupted(session: tuple[Session, Path]) -> None:
    """deploy/Procfile as `make cluster` runs it: three members on 127.0.0.1-3, output prefixed by
    name, and Ctrl-C (SIGINT) stops them all with status 0."""
    shell, workdir = session
    launcher = f"{shlex.quote(sys.executable)} {DEPLOY / 'procfile.py'} {DEPLOY / 'Procfile'}"
    run(shell, f"{launcher} > launcher.log 2>&1 &\n"
               "for n in 1 2 3; do until curl -fs http://127.0.0.$n:2379/health; do sleep 0.2; done; done")
    listing = run(shell, "etcdctl member list")
    assert sorted(line.split(", ")[2] for line in listing.splitlines()) == ["etcd01", "etcd02", "etcd03"]
    assert run(shell, "kill -INT %1; wait %1; echo status $?") == "status 0\n"
    log = (workdir / "launcher.log").read_text()
    for name in ("etcd01", "etcd02", "etcd03"):
        assert f"{name} | exited with status 0" in log
        assert re.search(rf"^{name} \| .*ready to serve client requests", log, re.MULTILINE)
        assert (workdir / f"{name}.etcd" / "member").is_dir()
