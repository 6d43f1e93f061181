"""Start-up mistakes of the seed article's readers, as petcd reports them: the line the reader sees,
and a data dir the refused start did not touch (no data dir at all for a member never started).

The article's first problem (clients on 127.0.0.1:2379 while the member listens only on the host's
own address) is replayed on the article's address, 192.168.122.51, in a private network namespace:
petcd's warning names the URL to add, and adding it is the fix. The walkthroughs quote the warning;
they must quote what petcd prints.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Implementation, MemberAddress, Sandbox, static_flags
from test_walkthrough import DOCS, WALKTHROUGHS, Session, require_namespaces

PETCD = Implementation("petcd", ("petcd",), how_to_install="(python3 -m pip install -e .)")
REFUSAL_TIMEOUT_SECONDS = 60.0
NO_LOOPBACK_WARNING = (
    "--listen-client-urls (http://192.168.122.51:2379) has no loopback address: local clients using "
    "etcdctl's default endpoint 127.0.0.1:2379 cannot connect; add http://127.0.0.1:2379 to "
    "--listen-client-urls")


def fingerprint(data_dir: Path) -> dict[str, str]:
    """Every file under `data_dir` with the SHA-256 of its contents."""
    return {str(path.relative_to(data_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(data_dir.rglob("*")) if path.is_file()}


def refusal_line(sandbox: Sandbox, address: MemberAddress, flags: list[str]) -> str:
    """The one `petcd: ...` line a refused start prints (after the structured log lines)."""
    member = sandbox.member(PETCD, address, flags)
    status = member.wait_exit(REFUSAL_TIMEOUT_SECONDS)
    assert status not in (None, 0), f"{address.name} was not refused:\n{member.log_tail()}"
    lines = [line for line in member.log_text().splitlines() if line.startswith("petcd: ")]
    assert len(lines) == 1, member.log_tail()
    return lines[0]


@pytest.fixture
def petcd() -> None:
    PETCD.require()


def test_name_missing_from_initial_cluster(sandbox: Sandbox, petcd: None) -> None:
    me, other = sandbox.addresses(["etcd04", "etcd01"])
    data_dir = sandbox.data_dir(me)
    line = refusal_line(sandbox, me, static_flags(me, data_dir, [other]))
    assert line == ("petcd: error verifying flags, couldn't find local name \"etcd04\" in the initial "
                    f"cluster configuration; add etcd04={me.peer_url} to --initial-cluster. "
                    "See 'petcd --help'.")
    assert not data_dir.exists()


@pytest.mark.parametrize("port", ["client", "peer"])
def test_port_in_use_names_the_flag_and_leaves_the_data_dir_as_it_was(
        sandbox: Sandbox, petcd: None, port: str) -> None:
    (member,) = sandbox.static_cluster(PETCD, 1, names=["etcd01"]).members
    assert member.terminate() == 0
    before = fingerprint(member.data_dir)
    address = member.address
    taken = address.client_port if port == "client" else address.peer_port
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((address.host, taken))
        squatter.listen()
        line = refusal_line(sandbox, address, member.flags)
    # Go's words (as etcd prints them), then the fix
    assert line == (f"petcd: listen tcp {address.host}:{taken}: bind: address already in use; stop the other "
                    f"process or choose another port with --listen-{port}-urls")
    assert fingerprint(member.data_dir) == before


def test_existing_for_a_member_never_added_writes_nothing(sandbox: Sandbox, petcd: None) -> None:
    running = sandbox.static_cluster(PETCD, 1, names=["etcd01"])
    (newcomer,) = sandbox.addresses(["etcd02"])
    data_dir = sandbox.data_dir(newcomer)
    flags = static_flags(newcomer, data_dir, [running.members[0].address, newcomer], state="existing")
    line = refusal_line(sandbox, newcomer, flags)
    # etcd's line (no Python class name in front of it), then the fix
    assert line.startswith("petcd: error validating peerURLs {ClusterID:") and line.endswith(
        f"Attributes:{{Name:etcd01 ClientURLs:[{running.members[0].client_url}]}}}}] RemovedMemberIDs:[]}}:"
        " member count is unequal; add it first with "
        f"`etcdctl member add etcd02 --peer-urls={newcomer.peer_url}`, or use --initial-cluster-state new"
    ), line
    assert not data_dir.exists()
    assert list(running.member_ids()) == ["etcd01"]


@pytest.mark.parametrize("document", WALKTHROUGHS)
def test_walkthroughs_quote_the_warning(document: str) -> None:
    assert NO_LOOPBACK_WARNING in (DOCS / document).read_text(encoding="utf-8")


@pytest.fixture
def article_host(petcd: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    """A shell in a private network namespace whose loopback also carries 192.168.122.51."""
    require_namespaces()
    workdir = tmp_path_factory.mktemp("err")
    shell = Session(workdir)
    try:
        assert shell.run("ip addr add 192.168.122.51/32 dev lo").status == 0
        yield shell
    finally:
        shell.close()
        if not os.environ.get("PETCD_KEEP_SANDBOX"):
            shutil.rmtree(workdir, ignore_errors=True)


ARTICLE_MEMBER = ("petcd --name etcd01 --listen-peer-urls http://192.168.122.51:2380 "
                  "--initial-advertise-peer-urls http://192.168.122.51:2380 "
                  "--advertise-client-urls http://192.168.122.51:2379 --listen-client-urls ")
WAIT_HEALTHY = "until curl -fs http://192.168.122.51:2379/health; do sleep 0.2; done; echo\n"


def test_client_urls_without_loopback_warn_and_name_the_url_to_add(article_host: Session) -> None:
    shell = article_host
    started = shell.run(f"{ARTICLE_MEMBER}http://192.168.122.51:2379 > etcd01.log 2>&1 &\n{WAIT_HEALTHY}"
                        "grep -c -F -- \"$WARNING\" etcd01.log\n"
                        "curl -sS http://127.0.0.1:2379/health; echo \" curl status $?\"\n"
                        "kill %1 && wait %1".replace("$WARNING", NO_LOOPBACK_WARNING))
    lines = started.output.splitlines()
    assert lines[1] == "1", started.output  # the warning, once
    # nothing listens on 127.0.0.1:2379: refused, as the article's etcdctl was
    assert lines[2].startswith("curl: (7)") and lines[3] == " curl status 7", started.output
    fix = "http://192.168.122.51:2379,http://127.0.0.1:2379"
    fixed = shell.run(f"{ARTICLE_MEMBER}{fix} >> etcd01.log 2>&1 &\n{WAIT_HEALTHY}"
                      "grep -c -F -- \"$WARNING\" etcd01.log\n"
                      "etcdctl member list\n"
                      "kill %1 && wait %1".replace("$WARNING", NO_LOOPBACK_WARNING))
    assert fixed.status == 0 and not fixed.failed_commands, fixed.output
    lines = fixed.output.splitlines()
    assert lines[1] == "1", fixed.output  # still only the first start's warning
    assert lines[2].endswith(
        ", started, etcd01, http://192.168.122.51:2380, http://192.168.122.51:2379, false"), fixed.output
