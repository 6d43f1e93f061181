"""The snapshot file format: what a member streams is what is saved; corrupt, truncated, foreign or
digest-less files are refused with a message naming the file; status and its etcdctl layouts."""

from __future__ import annotations

import hashlib
import json
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from petcd.snapshot import command, lmdb_header, printer, snapfile, status
from petcd.snapshot.snapfile import Receiver, SnapshotError
from petcd.storage.kv import DeleteRangeRequest, PutRequest
from petcd.storage.mvcc import MVCCStore

CHUNK = 32 * 1024  # what Maintenance.Snapshot sends per message


def stream_of(store: MVCCStore) -> Iterator[bytes]:
    """The messages' blobs as the Snapshot RPC sends them: the backend copy, then its SHA-256."""
    digest = hashlib.sha256()
    for chunk in store.backend.snapshot_chunks(CHUNK):
        digest.update(chunk)
        yield chunk
    yield digest.digest()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MVCCStore]:
    s = MVCCStore.open(tmp_path / "member" / "db")
    for i in range(300):
        s.put(PutRequest(key=f"key/{i:04d}".encode(), value=b"v" * (i % 50)))
    s.delete_range(DeleteRangeRequest(key=b"key/0007"))
    s.put(PutRequest(key=b"last", value=b"x"))
    yield s
    s.close()


@pytest.fixture
def saved(store: MVCCStore, tmp_path: Path) -> Path:
    path = tmp_path / "backup.db"
    receiver = Receiver(path)
    for blob in stream_of(store):
        receiver.write(blob)
    receiver.finish()
    return path


def test_saved_file_is_the_backend_copy_and_its_digest(saved: Path) -> None:
    data = saved.read_bytes()
    assert snapfile.has_digest(len(data))
    assert hashlib.sha256(data[:-32]).digest() == data[-32:]
    checked = snapfile.verify(saved)
    assert checked.backend_size == len(data) - 32
    assert checked.header.required_size <= checked.backend_size
    assert not saved.with_name("backup.db.part").exists()


def test_receiver_refuses_a_stream_without_its_digest(store: MVCCStore, tmp_path: Path) -> None:
    blobs = list(stream_of(store))
    for damaged in (blobs[:-1], [*blobs[:-1], b"\0" * 32], [blobs[0][:-1], *blobs[1:]]):
        path = tmp_path / "bad.db"
        receiver = Receiver(path)
        for blob in damaged:
            receiver.write(blob)
        with pytest.raises(SnapshotError, match="did not end with the SHA-256"):
            receiver.finish()
        assert not path.exists()
        assert not path.with_name("bad.db.part").exists()


@pytest.mark.parametrize("cut", [0, 1, 16, 100, 4096, 4096 + 32, -1, -31, -32, -33, -512, -4096])
def test_truncated_snapshot_is_refused(saved: Path, tmp_path: Path, cut: int) -> None:
    data = saved.read_bytes()
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(data[:cut])
    with pytest.raises(SnapshotError, match=r"truncated|corrupt|no SHA-256|not a petcd snapshot") as refused:
        snapfile.verify(truncated)
    assert str(truncated) in str(refused.value)


def test_every_flipped_byte_is_found(saved: Path, tmp_path: Path) -> None:
    data = saved.read_bytes()
    damaged = tmp_path / "damaged.db"
    for offset in range(0, len(data), 997):
        flipped = bytearray(data)
        flipped[offset] ^= 0x40
        damaged.write_bytes(bytes(flipped))
        with pytest.raises(SnapshotError, match="is corrupt"):
            snapfile.verify(damaged)


def test_backend_copied_from_a_data_dir_needs_skip_hash_check(store: MVCCStore, tmp_path: Path) -> None:
    raw = tmp_path / "db-copy"
    store.backend.snapshot(raw)
    with pytest.raises(SnapshotError, match="--skip-hash-check"):
        snapfile.verify(raw)
    checked = snapfile.verify(raw, skip_hash_check=True)
    assert checked.digest is None and checked.backend_size == raw.stat().st_size
    # ... but a raw file cut short is still refused: LMDB would read past its end
    short = tmp_path / "db-short"
    short.write_bytes(raw.read_bytes()[: 3 * 4096])
    with pytest.raises(SnapshotError, match="is truncated"):
        snapfile.verify(short, skip_hash_check=True)


def test_etcd_bbolt_snapshot_is_named_as_such(tmp_path: Path) -> None:
    # bbolt's meta page: a 16-byte page header, then the magic 0xED0CDAED (its first two pages).
    page = bytearray(4096)
    struct.pack_into("<QHHI", page, 0, 0, 0, 0x04, 0)
    struct.pack_into("<II", page, 16, 0xED0CDAED, 2)
    body = bytes(page) * 4
    etcd_snapshot = tmp_path / "etcd.db"
    etcd_snapshot.write_bytes(body + hashlib.sha256(body).digest())
    with pytest.raises(SnapshotError, match=r"etcd \(bbolt\) snapshot.*make-mirror"):
        snapfile.verify(etcd_snapshot)


def test_other_files_are_not_petcd_snapshots(tmp_path: Path) -> None:
    body = b"not a database" * 2000
    body = body[: len(body) // 512 * 512]
    other = tmp_path / "other.db"
    other.write_bytes(body + hashlib.sha256(body).digest())
    with pytest.raises(SnapshotError, match="is not a petcd snapshot: no LMDB header"):
        snapfile.verify(other)
    with pytest.raises(SnapshotError, match="cannot read snapshot"):
        snapfile.verify(tmp_path / "missing.db")


def test_header_parser_takes_the_newer_meta_page(saved: Path) -> None:
    head = saved.read_bytes()[: lmdb_header.MAX_HEADER_BYTES]
    parsed = lmdb_header.parse(head)
    metas = [struct.unpack_from("<QQ", head, start + 136) for start in (0, parsed.page_size)]
    assert (parsed.last_page, parsed.txn_id) == max(metas, key=lambda m: m[1])
    with pytest.raises(lmdb_header.HeaderError):
        lmdb_header.parse(head[:100])


def test_status_counts_what_the_store_holds(store: MVCCStore, saved: Path) -> None:
    result = status.status(snapfile.verify(saved))
    assert result.revision == store.current_revision == 303
    with store.backend.read() as txn:
        rows = sum(txn.stat(store.backend.db(name))["entries"] for name in ("key", "meta", "lease", "members",
                                                                             "alarm", "auth"))
    assert result.total_key == rows
    assert result.total_size == saved.stat().st_size - 32


def test_status_hash_follows_the_contents(store: MVCCStore, saved: Path, tmp_path: Path) -> None:
    before = status.status(snapfile.verify(saved))
    again = status.status(snapfile.verify(saved))
    assert before == again
    store.put(PutRequest(key=b"last", value=b"y"))
    later = tmp_path / "later.db"
    receiver = Receiver(later)
    for blob in stream_of(store):
        receiver.write(blob)
    receiver.finish()
    after = status.status(snapfile.verify(later))
    assert after.hash != before.hash and after.revision == before.revision + 1


@pytest.mark.parametrize(("size", "text"), [(5, "5 B"), (20480, "20 kB"), (28672, "29 kB"),
                                           (2109440, "2.1 MB"), (999, "999 B"), (1000, "1.0 kB")])
def test_sizes_print_as_go_humanize_does(size: int, text: str) -> None:
    assert printer.human_bytes(size) == text


def test_status_layouts_are_etcdctls() -> None:
    # etcdctl 3.4.23's output for an etcd snapshot with these values
    s = status.Status(hash=0xDC4B3C89, revision=4, total_key=8, total_size=20480)
    assert printer.render(s, "simple") == "dc4b3c89, 4, 8, 20 kB\n"
    assert printer.render(s, "table") == (
        "+----------+----------+------------+------------+\n"
        "|   HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |\n"
        "+----------+----------+------------+------------+\n"
        "| dc4b3c89 |        4 |          8 |      20 kB |\n"
        "+----------+----------+------------+------------+\n")
    assert printer.render(s, "json") == '{"hash":3695918217,"revision":4,"totalKey":8,"totalSize":20480}\n'
    assert printer.render(s, "fields") == '"Hash" : 3695918217\n"Revision" : 4\n"Keys" : 8\n"Size" : 20480\n'


def test_status_command(saved: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert command.main(["status", str(saved), "-w", "json"], {}) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["revision"] == 303 and shown["totalSize"] == saved.stat().st_size - 32
    assert command.main(["status", str(saved)], {"ETCDCTL_WRITE_OUT": "fields"}) == 0
    assert capsys.readouterr().out.startswith('"Hash" : ')
    assert command.main(["status", str(saved), "--write-out=protobuf"], {}) == command.EXIT_BAD_FEATURE
    assert capsys.readouterr().err == "Error: protobuf not supported as output format\n"


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], ["--help"], ["restore", "-h"], ["bogus"]):
        assert command.main(argv, {}) == 0  # etcdctl prints its help and succeeds, even for a typo
        assert "petcd snapshot <subcommand>" in capsys.readouterr().out


def test_command_refusals(saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (["status"], 128, "Error: snapshot status requires exactly one argument\n"),
        (["save"], 128, "Error: snapshot save expects one argument\n"),
        (["restore", str(saved), "--bogus"], 1, "Error: unknown flag: --bogus\n"),
        (["restore", str(saved), "--skip-hash-check=maybe"], 1,
         'Error: invalid argument "maybe" for "--skip-hash-check" flag: strconv.ParseBool: parsing "maybe": '
         "invalid syntax\n"),
        (["save", str(tmp_path / "x.db"), "--endpoints=a:1,b:2"], 5,
         "Error: snapshot must be requested to one selected node, not multiple [a:1 b:2]\n"),
        (["status", str(tmp_path / "none.db")], 1, None),
    ]
    for argv, code, message in cases:
        assert command.main(argv, {}) == code, argv
        err = capsys.readouterr().err
        if message is not None:
            assert err.endswith(message), (argv, err)
        else:
            assert err.startswith("Error: cannot read snapshot"), err
    assert not (tmp_path / "x.db").exists() and not (tmp_path / "x.db.part").exists()


def test_save_to_an_endpoint_nobody_serves_leaves_no_file(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as unused:  # a port that was free a moment ago and has no listener
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    target = tmp_path / "never.db"
    argv = ["save", str(target), f"--endpoints=127.0.0.1:{port}", "--dial-timeout=300ms"]
    assert command.main(argv, {}) == command.EXIT_INTERRUPTED
    assert capsys.readouterr().err.endswith("Error: context deadline exceeded\n")
    assert list(tmp_path.iterdir()) == []
