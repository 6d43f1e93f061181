"""Simple tokens (etcd's tokenSimple): `<16 random letters>.<raft index>`, valid for 300 s after
their last use, kept in memory by every member (a restart forgets them, as etcd does)."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass

TOKEN_TTL_SECONDS = 300.0
TOKEN_PREFIX_LENGTH = 16
LETTERS = string.ascii_lowercase + string.ascii_uppercase


def new_token_prefix() -> str:
    return "".join(secrets.choice(LETTERS) for _ in range(TOKEN_PREFIX_LENGTH))


def is_well_formed(token: str) -> bool:
    parts = token.split(".")
    return len(parts) == 2 and parts[1].isdigit()


@dataclass(slots=True)
class _Entry:
    user: str
    expires: float


class SimpleTokens:
    def __init__(self, clock: Callable[[], float], ttl: float = TOKEN_TTL_SECONDS) -> None:
        self._clock = clock
        self.ttl = ttl
        self._tokens: dict[str, _Entry] = {}

    def assign(self, user: str, prefix: str, index: int) -> str:
        token = f"{prefix}.{index}"
        self._tokens[token] = _Entry(user, self._clock() + self.ttl)
        return token

    def user_of(self, token: str) -> str | None:
        """The token's user, renewing its TTL; None if unknown or expired."""
        if not is_well_formed(token):
            return None
        entry = self._tokens.get(token)
        now = self._clock()
        if entry is None:
            return None
        if entry.expires <= now:
            del self._tokens[token]
            return None
        entry.expires = now + self.ttl
        return entry.user

    def invalidate_user(self, user: str) -> None:
        for token in [t for t, e in self._tokens.items() if e.user == user]:
            del self._tokens[token]

    def clear(self) -> None:
        self._tokens.clear()

    def expire(self) -> None:
        now = self._clock()
        for token in [t for t, e in self._tokens.items() if e.expires <= now]:
            del self._tokens[token]
