"""The auth store (etcd's authStore): users, roles, permissions, the enabled flag and the auth
revision, kept in the backend's `auth` database and mirrored in memory.

Every change is made by applying a Raft entry, inside the apply batch's LMDB write transaction, so
all members hold the same store; `load` rebuilds the memory copy (start, snapshot install).
The auth revision grows by one with every change; a request checked against an older revision is
refused at apply time (`revision of auth store is old`), which closes the window between the
API-layer check and the apply.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from petcd.api.errors import EtcdError
from petcd.auth import errors
from petcd.auth.passwords import DEFAULT_BCRYPT_COST, check_password, decode_hashed, hash_password
from petcd.auth.ranges import Interval, covers, is_valid_permission_range, merge, permission_interval
from petcd.auth.tokens import SimpleTokens
from petcd.proto import auth_pb2 as authpb
from petcd.storage.backend import Backend

ROOT_USER = "root"
ROOT_ROLE = "root"

ENABLED_KEY = b"authEnabled"
REVISION_KEY = b"authRevision"
USER_PREFIX = b"users/"
ROLE_PREFIX = b"roles/"
_U64 = struct.Struct(">Q")


@dataclass(frozen=True, slots=True)
class AuthInfo:
    """Who sends a request, and the auth revision their credentials were checked at (0: nobody)."""

    username: str
    revision: int


@dataclass(frozen=True, slots=True)
class _Merged:
    read: tuple[Interval, ...]
    write: tuple[Interval, ...]


class AuthStore:
    def __init__(
        self, backend: Backend, clock: Callable[[], float], bcrypt_cost: int = DEFAULT_BCRYPT_COST
    ) -> None:
        self.backend = backend
        self.bcrypt_cost = bcrypt_cost
        self.tokens = SimpleTokens(clock)
        self.enabled = False
        self.revision = 0
        self._users: dict[str, authpb.User] = {}
        self._roles: dict[str, authpb.Role] = {}
        self._merged: dict[str, _Merged] = {}
        self.load()

    def configure(self, bcrypt_cost: int, token_ttl: float) -> None:
        """--bcrypt-cost and --auth-token-ttl."""
        self.bcrypt_cost = bcrypt_cost
        self.tokens.ttl = token_ttl

    @property
    def _db(self) -> Any:
        return self.backend.db("auth")

    def load(self) -> None:
        """Read the whole store from the backend (it is small: users and roles)."""
        self._users.clear()
        self._roles.clear()
        self._merged.clear()
        with self.backend.read() as txn:
            self.enabled = txn.get(ENABLED_KEY, db=self._db) == b"\x01"
            raw_rev = txn.get(REVISION_KEY, db=self._db)
            self.revision = 0 if raw_rev is None else _U64.unpack(raw_rev)[0]
            for key, value in txn.cursor(db=self._db):
                if key.startswith(USER_PREFIX):
                    self._users[key[len(USER_PREFIX) :].decode()] = authpb.User.FromString(value)
                elif key.startswith(ROLE_PREFIX):
                    self._roles[key[len(ROLE_PREFIX) :].decode()] = authpb.Role.FromString(value)
        if not self.enabled:
            self.tokens.clear()

    # ---- reads ---------------------------------------------------------------------------------------

    def user(self, name: str) -> authpb.User | None:
        return self._users.get(name)

    def role(self, name: str) -> authpb.Role | None:
        return self._roles.get(name)

    def user_names(self) -> list[str]:
        return sorted(self._users)

    def role_names(self) -> list[str]:
        return sorted(self._roles)

    def has_role(self, user: str, role: str) -> bool:
        u = self._users.get(user)
        return u is not None and role in u.roles

    def _is_root(self, user: authpb.User) -> bool:
        return ROOT_ROLE in user.roles

    # ---- credentials (API layer) -------------------------------------------------------------------

    def check_password(self, name: str, password: str) -> int:
        """The auth revision the password was checked at; raises AUTH_FAILED and friends."""
        if not self.enabled:
            raise errors.AUTH_NOT_ENABLED
        user = self._users.get(name)
        if user is None:
            raise errors.AUTH_FAILED
        if user.options.no_password:
            raise errors.NO_PASSWORD_USER
        if not check_password(user.password, password):
            raise errors.AUTH_FAILED
        return self.revision

    def info_from_token(self, token: str) -> AuthInfo | None:
        """None when auth is off (tokens are ignored then); raises INVALID_AUTH_TOKEN."""
        if not self.enabled:
            return None
        user = self.tokens.user_of(token)
        if user is None:
            raise errors.INVALID_AUTH_TOKEN
        return AuthInfo(user, self.revision)

    def info_from_common_name(self, common_name: str) -> AuthInfo | None:
        """--client-cert-auth: the verified client certificate's CN names the user."""
        if not self.enabled or not common_name:
            return None
        return AuthInfo(common_name, self.revision)

    # ---- permission checks -----------------------------------------------------------------------

    def _merged_for(self, name: str) -> _Merged:
        cached = self._merged.get(name)
        if cached is not None:
            return cached
        read: list[Interval] = []
        write: list[Interval] = []
        for role_name in self._users[name].roles:
            role = self._roles.get(role_name)
            for perm in role.keyPermission if role is not None else ():
                iv = permission_interval(perm.key, perm.range_end)
                if perm.permType in (authpb.Permission.READ, authpb.Permission.READWRITE):
                    read.append(iv)
                if perm.permType in (authpb.Permission.WRITE, authpb.Permission.READWRITE):
                    write.append(iv)
        merged = _Merged(merge(read), merge(write))
        self._merged[name] = merged
        return merged

    def _check_op(self, info: AuthInfo | None, key: bytes, range_end: bytes, write: bool) -> None:
        if not self.enabled:
            return
        if info is None or info.revision == 0:
            raise errors.USER_EMPTY
        if info.revision < self.revision:
            raise errors.AUTH_OLD_REVISION
        user = self._users.get(info.username)
        if user is None:
            raise errors.PERMISSION_DENIED
        if self._is_root(user):
            return
        merged = self._merged_for(info.username)
        if not covers(merged.write if write else merged.read, key, range_end):
            raise errors.PERMISSION_DENIED

    def check_range(self, info: AuthInfo | None, key: bytes, range_end: bytes = b"") -> None:
        self._check_op(info, key, range_end, write=False)

    def check_put(self, info: AuthInfo | None, key: bytes) -> None:
        self._check_op(info, key, b"", write=True)

    def check_delete_range(self, info: AuthInfo | None, key: bytes, range_end: bytes = b"") -> None:
        self._check_op(info, key, range_end, write=True)

    def check_admin(self, info: AuthInfo | None) -> None:
        if not self.enabled:
            return
        if info is None or not info.username:
            raise errors.USER_EMPTY
        user = self._users.get(info.username)
        if user is None:
            raise errors.USER_NOT_FOUND
        if not self._is_root(user):
            raise errors.PERMISSION_DENIED

    def can_read(self, info: AuthInfo | None, key: bytes, range_end: bytes = b"") -> bool:
        return self._allowed(self.check_range, info, key, range_end)

    def can_write(self, info: AuthInfo | None, key: bytes, range_end: bytes = b"") -> bool:
        return self._allowed(self.check_delete_range, info, key, range_end)

    @staticmethod
    def _allowed(
        check: Callable[[AuthInfo | None, bytes, bytes], None], info: AuthInfo | None, key: bytes, end: bytes
    ) -> bool:
        try:
            check(info, key, end)
        except EtcdError:
            return False
        return True

    # ---- changes (apply path; `txn` is the apply batch's LMDB write transaction) ---------------

    def _commit_revision(self, txn: Any) -> None:
        self.revision += 1
        txn.put(REVISION_KEY, _U64.pack(self.revision), db=self._db)
        self._merged.clear()

    def _put_user(self, txn: Any, user: authpb.User) -> None:
        name = user.name.decode()
        self._users[name] = user
        txn.put(USER_PREFIX + user.name, user.SerializeToString(), db=self._db)

    def _put_role(self, txn: Any, role: authpb.Role) -> None:
        self._roles[role.name.decode()] = role
        txn.put(ROLE_PREFIX + role.name, role.SerializeToString(), db=self._db)

    def existing_user(self, name: str) -> authpb.User:
        user = self._users.get(name)
        if user is None:
            raise errors.USER_NOT_FOUND
        return user

    def existing_role(self, name: str) -> authpb.Role:
        role = self._roles.get(name)
        if role is None:
            raise errors.ROLE_NOT_FOUND
        return role

    def enable(self, txn: Any) -> None:
        if self.enabled:
            return
        root = self._users.get(ROOT_USER)
        if root is None:
            raise errors.ROOT_USER_NOT_EXIST
        if not self._is_root(root):
            raise errors.ROOT_ROLE_NOT_EXIST
        txn.put(ENABLED_KEY, b"\x01", db=self._db)
        self.enabled = True
        self._merged.clear()

    def disable(self, txn: Any) -> None:
        if not self.enabled:
            return
        txn.put(ENABLED_KEY, b"\x00", db=self._db)
        self._commit_revision(txn)
        self.enabled = False
        self.tokens.clear()

    def authenticate(self, name: str, token_prefix: str, index: int) -> str:
        """Issue a token (the password was checked by the member that took the request)."""
        if not self.enabled:
            raise errors.AUTH_NOT_ENABLED
        user = self._users.get(name)
        if user is None or user.options.no_password:
            raise errors.AUTH_FAILED
        return self.tokens.assign(name, token_prefix, index)

    def _password_hash(self, password: str, hashed_password: str) -> bytes:
        """etcd's selectPassword: the proposer sends a bcrypt hash; entries of old writers a password."""
        if password and not hashed_password:
            return hash_password(password, self.bcrypt_cost)
        hashed = decode_hashed(hashed_password)
        if hashed is None:
            raise errors.NO_PASSWORD_USER
        return hashed

    def user_add(self, txn: Any, name: str, password: str, hashed_password: str, no_password: bool) -> None:
        if not name:
            raise errors.USER_EMPTY
        if name in self._users:
            raise errors.USER_ALREADY_EXIST
        secret = b"" if no_password else self._password_hash(password, hashed_password)
        user = authpb.User(name=name.encode(), password=secret)
        user.options.no_password = no_password
        self._put_user(txn, user)
        self._commit_revision(txn)

    def user_delete(self, txn: Any, name: str) -> None:
        if self.enabled and name == ROOT_USER:
            raise errors.INVALID_AUTH_MGMT
        self.existing_user(name)
        del self._users[name]
        txn.delete(USER_PREFIX + name.encode(), db=self._db)
        self._commit_revision(txn)
        self.tokens.invalidate_user(name)

    def user_change_password(self, txn: Any, name: str, password: str, hashed_password: str) -> None:
        user = self.existing_user(name)
        updated = authpb.User()
        updated.CopyFrom(user)
        updated.password = b"" if user.options.no_password else self._password_hash(password, hashed_password)
        self._put_user(txn, updated)
        self._commit_revision(txn)
        self.tokens.invalidate_user(name)

    def user_grant_role(self, txn: Any, name: str, role: str) -> None:
        user = self.existing_user(name)
        if role != ROOT_ROLE:
            self.existing_role(role)
        roles = list(user.roles)
        i = bisect.bisect_left(roles, role)
        if i < len(roles) and roles[i] == role:
            return  # already granted: etcd ignores it without a new revision
        roles.insert(i, role)
        updated = authpb.User()
        updated.CopyFrom(user)
        del updated.roles[:]
        updated.roles.extend(roles)
        self._put_user(txn, updated)
        self._commit_revision(txn)

    def user_revoke_role(self, txn: Any, name: str, role: str) -> None:
        if self.enabled and name == ROOT_USER and role == ROOT_ROLE:
            raise errors.INVALID_AUTH_MGMT
        user = self.existing_user(name)
        if role not in user.roles:
            raise errors.ROLE_NOT_GRANTED
        self._put_user(txn, _without_role(user, role))
        self._commit_revision(txn)

    def role_add(self, txn: Any, name: str) -> None:
        if not name:
            raise errors.ROLE_EMPTY
        if name in self._roles:
            raise errors.ROLE_ALREADY_EXIST
        self._put_role(txn, authpb.Role(name=name.encode()))
        self._commit_revision(txn)

    def role_delete(self, txn: Any, name: str) -> None:
        if self.enabled and name == ROOT_ROLE:
            raise errors.INVALID_AUTH_MGMT
        self.existing_role(name)
        del self._roles[name]
        txn.delete(ROLE_PREFIX + name.encode(), db=self._db)
        for user in list(self._users.values()):
            if name in user.roles:
                self._put_user(txn, _without_role(user, name))
        self._commit_revision(txn)

    def role_grant_permission(self, txn: Any, name: str, perm: authpb.Permission | None) -> None:
        if perm is None:
            raise errors.PERMISSION_NOT_GIVEN
        if not is_valid_permission_range(perm.key, perm.range_end):
            raise errors.INVALID_AUTH_MGMT
        role = authpb.Role()
        role.CopyFrom(self.existing_role(name))
        perms = role.keyPermission
        # etcd looks for the first permission with this key and updates it if the range matches too.
        i = bisect.bisect_left([p.key for p in perms], perm.key)
        if i < len(perms) and perms[i].key == perm.key and perms[i].range_end == perm.range_end:
            perms[i].permType = perm.permType
        else:
            copies = [_copy_permission(p) for p in (*perms, perm)]
            del perms[:]
            perms.extend(sorted(copies, key=lambda p: p.key))
        self._put_role(txn, role)
        self._commit_revision(txn)

    def role_revoke_permission(self, txn: Any, name: str, key: bytes, range_end: bytes) -> None:
        role = self.existing_role(name)
        kept = [p for p in role.keyPermission if (p.key, p.range_end) != (key, range_end)]
        if len(kept) == len(role.keyPermission):
            raise errors.PERMISSION_NOT_GRANTED
        self._put_role(txn, authpb.Role(name=role.name, keyPermission=kept))
        self._commit_revision(txn)


def _without_role(user: authpb.User, role: str) -> authpb.User:
    updated = authpb.User()
    updated.CopyFrom(user)
    del updated.roles[:]
    updated.roles.extend(r for r in user.roles if r != role)
    return updated


def _copy_permission(p: authpb.Permission) -> authpb.Permission:
    return authpb.Permission(permType=p.permType, key=p.key, range_end=p.range_end)
