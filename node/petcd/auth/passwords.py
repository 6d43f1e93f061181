"""Password hashes: bcrypt, as etcd (cost from --bcrypt-cost, default 10). Never kept in the clear."""

from __future__ import annotations

import base64
import binascii

import bcrypt

DEFAULT_BCRYPT_COST = 10


def hash_password(password: str, cost: int = DEFAULT_BCRYPT_COST) -> bytes:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost))


def check_password(hashed: bytes, password: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), hashed)
    except ValueError:  # not a bcrypt hash (e.g. a no-password user's empty one)
        return False


def decode_hashed(hashed_password: str) -> bytes | None:
    """AuthUserAddRequest.hashedPassword (etcd 3.5 clients): base64 of a bcrypt hash; None if bad."""
    try:
        raw = base64.b64decode(hashed_password, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if raw.startswith(b"$2") else None
