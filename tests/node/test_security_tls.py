"""TLS on the client port with Debian's etcdctl 3.4, against petcd and (differential) Debian's etcd
3.4: a CA made with the openssl command line, --client-cert-auth (refused without a client
certificate or with one of another CA), the certificate's CN as auth user (a no-password user), a
token winning over the CN; then petcd alone: --auto-tls certificates in <data-dir>/fixtures/client,
certificate files rewritten while serving, and start-up errors naming the flag.
"""

from __future__ import annotations

import difflib
import socket
import ssl
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from harness import IMPLEMENTATIONS, Implementation, Member, MemberAddress, Sandbox, etcdctl, initial_cluster

PETCD = Implementation("petcd", ("petcd",))
REFERENCE = IMPLEMENTATIONS["etcd34"]
TIMEOUTS = ("--dial-timeout=2s", "--command-timeout=4s")
# etcdctl 3.4 talks plain text unless given a certificate file or told not to.
SKIP_VERIFY = ("--insecure-transport=false", "--insecure-skip-tls-verify")


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


class OpenSSL:
    """A certificate authority kept by the openssl command line, as operators make one."""

    def __init__(self, root: Path, name: str = "ca") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.ca = root / f"{name}.pem"
        self._ca_key = root / f"{name}-key.pem"
        self._run(
            "req",
            "-x509",
            *self._new_key(self._ca_key),
            "-out",
            str(self.ca),
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
        )

    @staticmethod
    def _new_key(path: Path) -> list[str]:
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(path)]

    def _run(self, *args: str) -> None:
        subprocess.run(["openssl", *args], cwd=self.root, check=True, capture_output=True, timeout=60)

    def issue(self, stem: str, cn: str, ip: str = "127.0.0.1") -> Pair:
        pair = Pair(self.root / f"{stem}.pem", self.root / f"{stem}-key.pem")
        csr, ext = self.root / f"{stem}.csr", self.root / f"{stem}.ext"
        ext.write_text(f"subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth,clientAuth\n")
        self._run("req", *self._new_key(pair.key), "-out", str(csr), "-subj", f"/CN={cn}")
        self._run(
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(self.ca),
            "-CAkey",
            str(self._ca_key),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            str(pair.cert),
            "-extfile",
            str(ext),
        )
        return pair


def new_address(sandbox: Sandbox) -> MemberAddress:
    (address,) = sandbox.addresses(["tls"])
    return address


def tls_member(
    sandbox: Sandbox, impl: Implementation, address: MemberAddress, flags: Sequence[str]
) -> tuple[Member, str]:
    impl.require()
    url = f"https://{address.host}:{address.client_port}"
    base = [
        f"--name={address.name}",
        f"--data-dir={sandbox.data_dir(address)}",
        f"--listen-client-urls={url}",
        f"--advertise-client-urls={url}",
        f"--listen-peer-urls={address.peer_url}",
        f"--initial-advertise-peer-urls={address.peer_url}",
        f"--initial-cluster={initial_cluster([address])}",
        "--bcrypt-cost=4",
    ]
    return sandbox.member(impl, address, [*base, *flags]), url


def ctl(url: str, *args: str, creds: Sequence[str] = ()) -> str:
    """etcdctl's answer as a transcript line: stdout, stderr without the client's JSON log lines, status."""
    r = etcdctl([*TIMEOUTS, *creds, *args], [url], timeout=30)
    stderr = "".join(line + "\n" for line in r.stderr.splitlines() if not line.startswith("{"))
    files = " ".join(Path(c.split("=", 1)[-1]).name for c in creds)
    return f"$ {' '.join(args)} [{files}]\n{r.stdout}{stderr}[{r.returncode}]\n"


def wait_serving(url: str, creds: Sequence[str], member: Member, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if etcdctl([*TIMEOUTS, *creds, "endpoint", "health"], [url], timeout=30).returncode == 0:
            return
        assert member.running(), member.log_tail()
        time.sleep(0.2)
    raise AssertionError(f"{url} not serving:\n{member.log_tail()}")


def session(sandbox: Sandbox, impl: Implementation, pki: OpenSSL, other: OpenSSL) -> str:
    address = new_address(sandbox)
    server = pki.issue(f"server-{impl.name}", "server", address.host)
    root, alice = pki.issue("root", "root"), pki.issue("alice", "alice")
    stranger = other.issue("stranger", "root")
    member, url = tls_member(
        sandbox,
        impl,
        address,
        [
            f"--cert-file={server.cert}",
            f"--key-file={server.key}",
            f"--trusted-ca-file={pki.ca}",
            "--client-cert-auth",
        ],
    )
    ca = f"--cacert={pki.ca}"
    as_root = (ca, f"--cert={root.cert}", f"--key={root.key}")
    as_alice = (ca, f"--cert={alice.cert}", f"--key={alice.key}")
    wait_serving(url, as_root, member)
    out = [
        ctl(url, "put", "/config/a", "1", creds=as_root),
        ctl(url, "put", "/secret/b", "2", creds=as_root),
        ctl(url, "get", "/config/a", creds=(ca,)),  # no client certificate
        ctl(url, "get", "/config/a", creds=(ca, f"--cert={stranger.cert}", f"--key={stranger.key}")),
        ctl(
            url,
            "get",
            "/config/a",
            creds=(f"--cacert={other.ca}", f"--cert={root.cert}", f"--key={root.key}"),
        ),
        ctl(url, "user", "add", "root", "--new-user-password=rootpw", creds=as_root),
        ctl(url, "user", "grant-role", "root", "root", creds=as_root),
        ctl(url, "user", "add", "alice", "--no-password", creds=as_root),
        ctl(url, "role", "add", "reader", creds=as_root),
        ctl(url, "role", "grant-permission", "reader", "read", "/config/", "--prefix", creds=as_root),
        ctl(url, "user", "grant-role", "alice", "reader", creds=as_root),
        ctl(url, "auth", "enable", creds=as_root),
        # The certificate's CN is the user: alice reads /config/ only; root reads everything.
        ctl(url, "get", "/config/a", creds=as_alice),
        ctl(url, "put", "/config/a", "2", creds=as_alice),
        ctl(url, "get", "/secret/b", creds=as_alice),
        ctl(url, "get", "/secret/b", creds=as_root),
        ctl(url, "user", "list", creds=as_alice),
        # A password login wins over the certificate.
        ctl(url, "get", "/secret/b", "--user=root:rootpw", creds=as_alice),
        ctl(url, "get", "/secret/b", "--user=alice:x", creds=as_root),
        ctl(url, "auth", "disable", creds=as_root),
    ]
    member.kill()
    return "".join(out)


@pytest.fixture
def pkis(tmp_path: Path) -> tuple[OpenSSL, OpenSSL]:
    return OpenSSL(tmp_path / "pki"), OpenSSL(tmp_path / "other", "other-ca")


def test_client_certificates_and_cn_auth_match_etcd(sandbox: Sandbox, pkis: tuple[OpenSSL, OpenSSL]) -> None:
    pki, other = pkis
    ours = session(sandbox, PETCD, pki, other)
    for expected in (
        "$ get /config/a [ca.pem alice.pem alice-key.pem]\n/config/a\n1\n[0]\n",
        "$ put /config/a 2 [ca.pem alice.pem alice-key.pem]\nError: etcdserver: permission denied\n[1]\n",
        "$ get /secret/b [ca.pem root.pem root-key.pem]\n/secret/b\n2\n[0]\n",
    ):
        assert expected in ours, ours
    refused = ours.split("$ get /config/a [ca.pem]\n", 1)[1].split("$ ", 1)[0]
    assert refused.endswith("[1]\n"), refused  # no client certificate: no answer
    theirs = session(sandbox, REFERENCE, pki, other)
    if theirs != ours:
        diff = difflib.unified_diff(theirs.splitlines(True), ours.splitlines(True), "etcd 3.4", "petcd")
        pytest.fail("transcripts differ:\n" + "".join(diff), pytrace=False)


def served_serial(url: str, ca: Path, client: Pair) -> int:
    host, port = url.removeprefix("https://").split(":")
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(client.cert, client.key)
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as s,
    ):
        der = s.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_rewritten_certificate_files_are_served_without_restart(sandbox: Sandbox, tmp_path: Path) -> None:
    pki = OpenSSL(tmp_path / "pki")
    address = new_address(sandbox)
    first, client = pki.issue("server", "server", address.host), pki.issue("client", "client")
    member, url = tls_member(
        sandbox,
        PETCD,
        address,
        [f"--cert-file={first.cert}", f"--key-file={first.key}", f"--trusted-ca-file={pki.ca}"],
    )
    creds = (f"--cacert={pki.ca}", f"--cert={client.cert}", f"--key={client.key}")
    wait_serving(url, creds, member)
    before = served_serial(url, pki.ca, client)
    pki.issue("server", "server", address.host)  # the same two files, a new certificate
    after = served_serial(url, pki.ca, client)
    assert after != before
    assert after == x509.load_pem_x509_certificate(first.cert.read_bytes()).serial_number
    assert "OK" in ctl(url, "put", "k", "v", creds=creds)


def test_auto_tls(sandbox: Sandbox) -> None:
    member, url = tls_member(sandbox, PETCD, new_address(sandbox), ["--auto-tls"])
    wait_serving(url, SKIP_VERIFY, member)
    assert "OK" in ctl(url, "put", "k", "v", creds=SKIP_VERIFY)
    fixtures = member.data_dir / "fixtures" / "client"
    cert = x509.load_pem_x509_certificate((fixtures / "cert.pem").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == [url.split("//")[1].split(":")[0]]
    # Plain-text clients get no answer on a TLS port.
    assert ctl(url.replace("https", "http"), "get", "k").endswith("[1]\n")
    member.terminate()
    member.start()  # a restart reuses the certificate
    wait_serving(url, SKIP_VERIFY, member)
    assert x509.load_pem_x509_certificate((fixtures / "cert.pem").read_bytes()) == cert


@pytest.mark.parametrize("problem", ["missing", "mismatched", "client-cert-auth-without-ca"])
def test_start_up_errors_name_the_flag(sandbox: Sandbox, tmp_path: Path, problem: str) -> None:
    pki = OpenSSL(tmp_path / "pki")
    server, other = pki.issue("server", "server"), pki.issue("other", "other")
    flags, expected = {
        "missing": (
            [f"--cert-file={tmp_path}/nope.pem", f"--key-file={server.key}"],
            f"--cert-file: open {tmp_path}/nope.pem: no such file or directory",
        ),
        "mismatched": (
            [f"--cert-file={server.cert}", f"--key-file={other.key}"],
            f"--key-file {other.key} is not the private key of --cert-file {server.cert}",
        ),
        "client-cert-auth-without-ca": (
            [f"--cert-file={server.cert}", f"--key-file={server.key}", "--client-cert-auth"],
            "--client-cert-auth needs --trusted-ca-file",
        ),
    }[problem]
    member, _ = tls_member(sandbox, PETCD, new_address(sandbox), flags)
    assert member.wait_exit(30) == 1
    assert member.logged(expected), member.log_tail()
    assert not member.data_dir.exists()  # refused before the data directory is made


def test_peer_tls_is_refused_until_served(sandbox: Sandbox) -> None:
    member, _ = tls_member(sandbox, PETCD, new_address(sandbox), ["--auto-tls", "--peer-auto-tls"])
    assert member.wait_exit(30) == 1
    assert member.logged("TLS is not supported by this petcd version yet (--peer-auto-tls)"), (
        member.log_tail()
    )
