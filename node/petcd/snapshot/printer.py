"""`snapshot status` output in etcdctl's --write-out formats: simple, table, json, fields (pure)."""

from __future__ import annotations

import json
import math

from petcd.snapshot.status import Status

FORMATS = ("simple", "table", "json", "fields")
_SIZE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB")
TABLE_HEADER = ("HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE")


def human_bytes(size: int) -> str:
    """go-humanize's Bytes (SI units), which etcdctl prints sizes with: 20480 -> '20 kB'."""
    if size < 10:
        return f"{size} B"
    exponent = min(math.floor(math.log(size) / math.log(1000)), len(_SIZE_UNITS) - 1)
    value = math.floor(size / 1000**exponent * 10 + 0.5) / 10
    return f"{value:.0f} {_SIZE_UNITS[exponent]}" if value >= 10 else f"{value:.1f} {_SIZE_UNITS[exponent]}"


def _row(s: Status) -> tuple[str, ...]:
    return (f"{s.hash:x}", str(s.revision), str(s.total_key), human_bytes(s.total_size))


def _centered(text: str, width: int) -> str:
    gap = width - len(text)
    return " " * (gap // 2) + text + " " * (gap - gap // 2)


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """etcdctl's table: centred headers, right-aligned cells, one space of padding."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    titles = "| " + " | ".join(_centered(h, w) for h, w in zip(header, widths, strict=True)) + " |"
    lines = [rule, titles, rule]
    lines += ["| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.append(rule)
    return "\n".join(lines) + "\n"


def render(s: Status, write_out: str) -> str:
    if write_out == "simple":
        return ", ".join(_row(s)) + "\n"
    if write_out == "table":
        return table(TABLE_HEADER, [_row(s)])
    if write_out == "json":
        body = {"hash": s.hash, "revision": s.revision, "totalKey": s.total_key, "totalSize": s.total_size}
        return json.dumps(body, separators=(",", ":")) + "\n"
    if write_out == "fields":
        return (f'"Hash" : {s.hash}\n"Revision" : {s.revision}\n"Keys" : {s.total_key}\n'
                f'"Size" : {s.total_size}\n')
    raise ValueError(f"{write_out} not supported as output format")
