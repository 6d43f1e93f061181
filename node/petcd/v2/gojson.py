"""JSON text as Go's encoding/json writes it, so v2 bodies match etcd byte for byte."""

from __future__ import annotations

import json
from typing import Any

# encoding/json escapes these even inside strings (HTML safety and JavaScript line separators).
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def dumps(obj: Any) -> str:
    """Compact JSON with Go's escaping; no trailing newline."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    for raw, escaped in _GO_ESCAPES.items():
        text = text.replace(raw, escaped)
    return text


def encode_line(obj: Any) -> bytes:
    """What json.NewEncoder(w).Encode writes: the JSON and a newline."""
    return (dumps(obj) + "\n").encode()
