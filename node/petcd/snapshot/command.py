"""The `petcd snapshot` command line: etcdctl's `snapshot save|status|restore`, flags and messages.

    petcd snapshot save <file> [--endpoints=host:port] [--dial-timeout=2s] [--command-timeout=...]
    petcd snapshot status <file> [-w simple|table|json|fields]
    petcd snapshot restore <file> [--data-dir ...] [--wal-dir ...] [--name ...] [--initial-cluster ...]
                                  [--initial-cluster-token ...] [--initial-advertise-peer-urls ...]
                                  [--skip-hash-check]

Global flags may also come from ETCDCTL_* variables, as with etcdctl. Errors print `Error: <text>` on
stderr with etcdctl's exit codes; progress is logged as JSON lines on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from petcd import config
from petcd.log import configure, get_logger

EXIT_OK, EXIT_ERROR, EXIT_BAD_FEATURE, EXIT_INTERRUPTED, EXIT_BAD_ARGS = 0, 1, 4, 5, 128

# flag name -> (default, is a boolean); the global ones first (etcdctl's defaults).
GLOBAL_FLAGS: dict[str, tuple[str, bool]] = {
    "endpoints": ("127.0.0.1:2379", False),
    "dial-timeout": ("2s", False),
    "command-timeout": ("5s", False),
    "write-out": ("simple", False),
}
RESTORE_FLAGS: dict[str, tuple[str, bool]] = {
    "data-dir": ("", False),
    "wal-dir": ("", False),
    "name": ("default", False),
    "initial-cluster": ("default=http://localhost:2380", False),
    "initial-cluster-token": ("etcd-cluster", False),
    "initial-advertise-peer-urls": ("http://localhost:2380", False),
    "skip-hash-check": ("false", True),
}
SHORTHANDS = {"w": "write-out"}

USAGE = """NAME:
\tsnapshot - Manages petcd node snapshots (etcdctl's snapshot command)

USAGE:
\tpetcd snapshot <subcommand> [flags]

COMMANDS:
\trestore\tRestores a petcd member snapshot to a petcd data directory
\tsave\tStores a member's backend snapshot to a given file
\tstatus\tGets backend snapshot status of a given file

GLOBAL OPTIONS:
      --command-timeout=5s\t\ttimeout for the transfer (snapshot save: none unless given)
      --dial-timeout=2s\t\t\tdial timeout for client connections
      --endpoints=[127.0.0.1:2379]\tgRPC endpoints (snapshot save: exactly one)
  -w, --write-out="simple"\t\tset the output format (fields, json, simple, table)

RESTORE OPTIONS:
      --data-dir=""\t\t\t\t\t\tPath to the data directory
      --initial-advertise-peer-urls="http://localhost:2380"\tList of this member's peer URLs
      --initial-cluster="default=http://localhost:2380"\t\tInitial cluster configuration for restore bootstrap
      --initial-cluster-token="etcd-cluster"\t\t\tInitial cluster token for the new cluster
      --name="default"\t\t\t\t\t\tHuman-readable name for this member
      --skip-hash-check[=false]\t\t\t\t\tIgnore the SHA-256 trailer (a backend copied from a data directory)
      --wal-dir=""\t\t\t\t\t\tPath to the WAL directory (use --data-dir if none given)
"""


class CommandError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Parsed:
    args: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    explicit: set[str] = field(default_factory=set)


def parse_flags(argv: Sequence[str], flags: Mapping[str, tuple[str, bool]],
                environ: Mapping[str, str]) -> Parsed:
    """pflag's syntax (`--name=value`, `--name value`, `-w value`, bare booleans); ETCDCTL_<NAME>
    supplies a global flag the command line leaves out."""
    parsed = Parsed(values={name: default for name, (default, _) in flags.items()})
    for name in GLOBAL_FLAGS:
        variable = "ETCDCTL_" + name.upper().replace("-", "_")
        if variable in environ:
            parsed.values[name] = environ[variable]
            parsed.explicit.add(name)
    items = list(argv)
    while items:
        item = items.pop(0)
        if item == "--":
            parsed.args.extend(items)
            break
        if not item.startswith("-") or item == "-":
            parsed.args.append(item)
            continue
        body = item.lstrip("-")
        name, has_value, value = body.partition("=")
        if item.startswith("-") and not item.startswith("--"):
            name = SHORTHANDS.get(name, "")
            if not name:
                raise CommandError(f"unknown shorthand flag: '{body[:1]}' in {item}", EXIT_ERROR)
        if name not in flags:
            raise CommandError(f"unknown flag: --{name}", EXIT_ERROR)
        is_bool = flags[name][1]
        if is_bool:
            value = value if has_value else "true"
            try:
                config.parse_go_bool(value)
            except ValueError:
                raise CommandError(f'invalid argument "{value}" for "--{name}" flag: strconv.ParseBool: '
                                   f'parsing "{value}": invalid syntax', EXIT_ERROR) from None
        elif not has_value:
            if not items:
                raise CommandError(f"flag needs an argument: --{name}", EXIT_ERROR)
            value = items.pop(0)
        parsed.values[name] = value
        parsed.explicit.add(name)
    return parsed


def _duration(parsed: Parsed, name: str) -> float:
    try:
        return config.parse_go_duration(parsed.values[name])
    except ValueError:
        raise CommandError(f'invalid argument "{parsed.values[name]}" for "--{name}" flag: '
                           f'time: invalid duration "{parsed.values[name]}"', EXIT_ERROR) from None


def _one_file(parsed: Parsed, message: str) -> str:
    if len(parsed.args) != 1:
        raise CommandError(message, EXIT_BAD_ARGS)
    return parsed.args[0]


def cmd_save(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    from petcd.snapshot import save

    parsed = parse_flags(argv, GLOBAL_FLAGS, environ)
    path = _one_file(parsed, "snapshot save expects one argument")
    endpoints = [e.strip() for e in parsed.values["endpoints"].split(",") if e.strip()]
    # etcdctl: no deadline for the transfer unless --command-timeout is given
    timeout = _duration(parsed, "command-timeout") if "command-timeout" in parsed.explicit else None
    configure("", "info", ("stderr",))
    log = get_logger("snapshot")
    log.info("created temporary db file", path=f"{path}.part")
    try:
        saved = save.save(endpoints, path, dial_timeout=_duration(parsed, "dial-timeout"),
                          command_timeout=timeout)
    except save.SaveError as exc:
        raise CommandError(str(exc), EXIT_INTERRUPTED) from None
    log.info("saved", path=saved.path, size=saved.size)
    print(f"Snapshot saved at {saved.path}")
    return EXIT_OK


def cmd_status(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    from petcd.snapshot import printer, snapfile, status

    parsed = parse_flags(argv, GLOBAL_FLAGS, environ)
    path = _one_file(parsed, "snapshot status requires exactly one argument")
    write_out = parsed.values["write-out"]
    if write_out not in printer.FORMATS:
        message = ("protobuf not supported as output format" if write_out == "protobuf"
                   else "unsupported output format")
        raise CommandError(message, EXIT_BAD_FEATURE)
    try:
        result = status.status(snapfile.verify(path))
    except snapfile.SnapshotError as exc:
        raise CommandError(str(exc), EXIT_ERROR) from None
    sys.stdout.write(printer.render(result, write_out))
    return EXIT_OK


def cmd_restore(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    from petcd.snapshot import restore, snapfile

    parsed = parse_flags(argv, {**GLOBAL_FLAGS, **RESTORE_FLAGS}, environ)
    path = _one_file(parsed, "snapshot restore requires exactly one argument")
    v = parsed.values
    options = restore.RestoreOptions(
        name=v["name"], data_dir=v["data-dir"], wal_dir=v["wal-dir"], initial_cluster=v["initial-cluster"],
        initial_cluster_token=v["initial-cluster-token"],
        initial_advertise_peer_urls=v["initial-advertise-peer-urls"],
        skip_hash_check=config.parse_go_bool(v["skip-hash-check"]))
    configure(options.name, "info", ("stderr",))
    log = get_logger("snapshot")
    try:
        done = restore.restore(path, options)
    except (restore.RestoreError, snapfile.SnapshotError, config.ConfigError) as exc:
        raise CommandError(str(exc), EXIT_ERROR) from None
    log.info("restored snapshot", path=path, **{"data-dir": str(done.data_dir), "wal-dir": str(done.wal_dir),
             "snap-dir": str(done.snap_dir), "member-id": f"{done.member_id:x}",
             "cluster-id": f"{done.cluster_id:x}"})
    return EXIT_OK


SUBCOMMANDS: dict[str, Callable[[Sequence[str], Mapping[str, str]], int]] = {
    "save": cmd_save,
    "status": cmd_status,
    "restore": cmd_restore,
}


def main(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """`petcd snapshot ...` (registered in petcd.cli.SUBCOMMANDS)."""
    if not argv or argv[0] not in SUBCOMMANDS or any(a in ("-h", "--help", "help") for a in argv):
        sys.stdout.write(USAGE)  # etcdctl too prints its help and succeeds for an unknown subcommand
        return EXIT_OK
    try:
        return SUBCOMMANDS[argv[0]](argv[1:], environ)
    except CommandError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.status
