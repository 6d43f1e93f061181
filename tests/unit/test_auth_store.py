"""The auth store: etcd's rules for users, roles, permissions, enabling, tokens and persistence.

Every change goes through `petcd.auth.apply.apply_auth` with an InternalRaftRequest, as the apply
path does; permission checks go through `petcd.auth.checks`, as the API layer and apply do.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from petcd.api.errors import EtcdError
from petcd.auth import checks
from petcd.auth import errors as autherr
from petcd.auth.apply import apply_auth
from petcd.auth.passwords import hash_password
from petcd.auth.store import AuthInfo, AuthStore
from petcd.proto import auth_pb2 as authpb
from petcd.proto import raft_internal_pb2 as ipb
from petcd.proto import rpc_pb2 as pb
from petcd.storage.backend import Backend

P = authpb.Permission
NO_LEASE_KEYS: dict[int, list[bytes]] = {}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Env:
    """A store over a real backend, changed the way the apply path changes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.clock = Clock()
        self.index = 0
        self.open()

    def open(self) -> None:
        self.backend = Backend(self.path / "db")
        self.store = AuthStore(self.backend, self.clock, bcrypt_cost=4)

    def reopen(self) -> None:
        self.backend.close()
        self.open()

    def apply(self, as_user: AuthInfo | None = None, **request: Any) -> Any:
        req = ipb.InternalRaftRequest(**request)
        if as_user is None and self.store.enabled:
            as_user = AuthInfo("root", self.store.revision)  # an administrator, unless told otherwise
        if as_user is not None:
            req.header.username = as_user.username
            req.header.auth_revision = as_user.revision
        self.index += 1
        with self.backend.write() as txn:
            checks.check_applied(self.store, req, lambda lease: NO_LEASE_KEYS.get(lease, []))
            return apply_auth(self.store, txn, req, self.index, pb.ResponseHeader)

    def add_user(self, name: str, password: str = "pw", no_password: bool = False) -> None:
        # The proposing member hashes; the log carries only the hash.
        hashed = "" if no_password else _b64(hash_password(password, 4))
        add = pb.AuthUserAddRequest(name=name, hashedPassword=hashed)
        add.options.no_password = no_password
        self.apply(auth_user_add=add)

    def add_role(self, name: str, *perms: tuple[int, bytes, bytes]) -> None:
        self.apply(auth_role_add=pb.AuthRoleAddRequest(name=name))
        for typ, key, end in perms:
            grant = pb.AuthRoleGrantPermissionRequest(name=name, perm=P(permType=typ, key=key, range_end=end))
            self.apply(auth_role_grant_permission=grant)

    def grant(self, user: str, role: str) -> None:
        self.apply(auth_user_grant_role=pb.AuthUserGrantRoleRequest(user=user, role=role))

    def enable_with_root(self) -> None:
        self.add_user("root", "rootpw")
        self.grant("root", "root")
        self.apply(auth_enable=pb.AuthEnableRequest())

    def login(self, name: str, password: str) -> AuthInfo:
        self.store.check_password(name, password)
        resp = self.apply(
            authenticate=ipb.InternalAuthenticateRequest(name=name, simple_token="abcdefghijklmnop")
        )
        info = self.store.info_from_token(resp.token)
        assert info is not None
        return info


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.backend.close()


def raises(err: EtcdError, fn: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(EtcdError) as info:
        fn(*args, **kwargs)
    assert info.value == err, (info.value, err)


# ---- enable / disable ------------------------------------------------------------------------------


def test_enable_needs_root_user_then_root_role(env: Env) -> None:
    raises(autherr.ROOT_USER_NOT_EXIST, env.apply, auth_enable=pb.AuthEnableRequest())
    env.add_user("root")
    raises(autherr.ROOT_ROLE_NOT_EXIST, env.apply, auth_enable=pb.AuthEnableRequest())
    env.grant("root", "root")  # the root role need not exist as a role
    env.apply(auth_enable=pb.AuthEnableRequest())
    assert env.store.enabled
    env.apply(env.login("root", "pw"), auth_enable=pb.AuthEnableRequest())  # again: a no-op
    assert env.store.enabled
    assert autherr.ROOT_USER_NOT_EXIST.message == "etcdserver: root user does not exist"
    assert autherr.ROOT_ROLE_NOT_EXIST.message == "etcdserver: root user does not have root role"


def test_status_and_revision(env: Env) -> None:
    status = env.apply(auth_status=pb.AuthStatusRequest())
    assert (status.enabled, status.authRevision) == (False, 0)
    env.add_user("root")  # rev 1
    env.grant("root", "root")  # rev 2
    env.grant("root", "root")  # already granted: no new revision
    env.apply(auth_enable=pb.AuthEnableRequest())  # enabling does not bump it
    root = env.login("root", "pw")
    status = env.apply(root, auth_status=pb.AuthStatusRequest())
    assert (status.enabled, status.authRevision) == (True, 2)
    env.apply(root, auth_disable=pb.AuthDisableRequest())  # disabling does
    status = env.apply(auth_status=pb.AuthStatusRequest())
    assert (status.enabled, status.authRevision) == (False, 3)


def test_disable_drops_tokens_and_root_is_protected_while_enabled(env: Env) -> None:
    env.enable_with_root()
    root = env.login("root", "rootpw")
    raises(autherr.INVALID_AUTH_MGMT, env.apply, root, auth_user_delete=pb.AuthUserDeleteRequest(name="root"))
    raises(autherr.INVALID_AUTH_MGMT, env.apply, root, auth_role_delete=pb.AuthRoleDeleteRequest(role="root"))
    raises(
        autherr.INVALID_AUTH_MGMT,
        env.apply,
        root,
        auth_user_revoke_role=pb.AuthUserRevokeRoleRequest(name="root", role="root"),
    )
    resp = env.apply(root, authenticate=ipb.InternalAuthenticateRequest(name="root", simple_token="x" * 16))
    env.apply(root, auth_disable=pb.AuthDisableRequest())
    assert env.store.info_from_token(resp.token) is None  # auth off: tokens are ignored
    env.apply(auth_enable=pb.AuthEnableRequest())
    raises(autherr.INVALID_AUTH_TOKEN, env.store.info_from_token, resp.token)


# ---- users and roles: etcd's errors -----------------------------------------------------------------


def test_user_and_role_errors(env: Env) -> None:
    raises(autherr.USER_EMPTY, env.add_user, "")
    env.add_user("alice")
    raises(autherr.USER_ALREADY_EXIST, env.add_user, "alice")
    raises(autherr.ROLE_EMPTY, env.add_role, "")
    env.add_role("reader")
    raises(autherr.ROLE_ALREADY_EXIST, env.add_role, "reader")
    raises(autherr.USER_NOT_FOUND, env.grant, "bob", "reader")
    raises(autherr.ROLE_NOT_FOUND, env.grant, "alice", "writer")
    raises(
        autherr.ROLE_NOT_GRANTED,
        env.apply,
        auth_user_revoke_role=pb.AuthUserRevokeRoleRequest(name="alice", role="reader"),
    )
    raises(autherr.USER_NOT_FOUND, env.apply, auth_user_get=pb.AuthUserGetRequest(name="bob"))
    raises(autherr.ROLE_NOT_FOUND, env.apply, auth_role_get=pb.AuthRoleGetRequest(role="writer"))
    raises(
        autherr.PERMISSION_NOT_GIVEN,
        env.apply,
        auth_role_grant_permission=pb.AuthRoleGrantPermissionRequest(name="reader"),
    )
    bad_range = P(permType=P.READ, key=b"b", range_end=b"a")
    raises(
        autherr.INVALID_AUTH_MGMT,
        env.apply,
        auth_role_grant_permission=pb.AuthRoleGrantPermissionRequest(name="reader", perm=bad_range),
    )
    raises(
        autherr.PERMISSION_NOT_GRANTED,
        env.apply,
        auth_role_revoke_permission=pb.AuthRoleRevokePermissionRequest(role="reader", key=b"k"),
    )
    assert autherr.USER_ALREADY_EXIST.message == "etcdserver: user name already exists"
    assert autherr.USER_EMPTY.message == "etcdserver: user name is empty"


def test_role_grant_updates_in_place_and_lists_sorted(env: Env) -> None:
    env.add_role("r", (P.READ, b"/b", b""), (P.READ, b"/a/", b"/a0"), (P.WRITE, b"/a/", b"/a0"))
    perms = env.apply(auth_role_get=pb.AuthRoleGetRequest(role="r")).perm
    assert [(p.permType, p.key, p.range_end) for p in perms] == [
        (P.WRITE, b"/a/", b"/a0"),
        (P.READ, b"/b", b""),
    ]
    env.add_user("zed")
    env.add_user("amy")
    env.grant("amy", "r")
    env.grant("amy", "root")
    assert list(env.apply(auth_user_list=pb.AuthUserListRequest()).users) == ["amy", "zed"]
    assert list(env.apply(auth_user_get=pb.AuthUserGetRequest(name="amy")).roles) == ["r", "root"]
    env.apply(auth_role_delete=pb.AuthRoleDeleteRequest(role="r"))  # also revoked from its users
    assert list(env.apply(auth_user_get=pb.AuthUserGetRequest(name="amy")).roles) == ["root"]
    assert list(env.apply(auth_role_list=pb.AuthRoleListRequest()).roles) == []


# ---- passwords and tokens ---------------------------------------------------------------------------


def test_password_checks(env: Env) -> None:
    env.enable_with_root()
    env.add_user("cert-only", no_password=True)
    raises(autherr.AUTH_FAILED, env.store.check_password, "root", "wrong")
    raises(autherr.AUTH_FAILED, env.store.check_password, "nobody", "rootpw")
    raises(autherr.NO_PASSWORD_USER, env.store.check_password, "cert-only", "")
    assert env.store.check_password("root", "rootpw") == env.store.revision
    root = env.login("root", "rootpw")
    env.apply(root, auth_user_change_password=pb.AuthUserChangePasswordRequest(name="root", password="new"))
    raises(autherr.AUTH_FAILED, env.store.check_password, "root", "rootpw")
    env.store.check_password("root", "new")


def test_password_never_stored_in_the_clear(env: Env, tmp_path: Path) -> None:
    env.add_user("alice", "s3cret-Password")
    env.backend.sync()
    assert b"s3cret-Password" not in (tmp_path / "db").read_bytes()
    assert env.store.user("alice") is not None
    assert env.store.user("alice").password.startswith(b"$2")  # type: ignore[union-attr]


def test_token_format_expiry_and_renewal(env: Env) -> None:
    env.enable_with_root()
    resp = env.apply(
        authenticate=ipb.InternalAuthenticateRequest(name="root", simple_token="QWERTYUIOPasdfgh")
    )
    assert resp.token == f"QWERTYUIOPasdfgh.{env.index}"
    env.clock.now += 299
    assert env.store.info_from_token(resp.token) == AuthInfo("root", env.store.revision)  # renews
    env.clock.now += 299
    assert env.store.info_from_token(resp.token) is not None
    env.clock.now += 300
    raises(autherr.INVALID_AUTH_TOKEN, env.store.info_from_token, resp.token)
    raises(autherr.INVALID_AUTH_TOKEN, env.store.info_from_token, "not-a-token")


def test_tokens_of_a_changed_user_are_dropped(env: Env) -> None:
    env.enable_with_root()
    env.add_user("alice", "pw")
    alice = env.login("alice", "pw")
    token = env.apply(authenticate=ipb.InternalAuthenticateRequest(name="alice", simple_token="a" * 16)).token
    assert alice.username == "alice"
    env.apply(env.login("root", "rootpw"), auth_user_delete=pb.AuthUserDeleteRequest(name="alice"))
    raises(autherr.INVALID_AUTH_TOKEN, env.store.info_from_token, token)


def test_authenticate_refuses_unknown_and_no_password_users(env: Env) -> None:
    raises(autherr.AUTH_NOT_ENABLED, env.apply, authenticate=ipb.InternalAuthenticateRequest(name="root"))
    env.enable_with_root()
    env.add_user("cn-user", no_password=True)
    for name in ("nobody", "cn-user"):
        raises(autherr.AUTH_FAILED, env.apply, authenticate=ipb.InternalAuthenticateRequest(name=name))


# ---- permissions --------------------------------------------------------------------------------------


@pytest.fixture
def granted(env: Env) -> Env:
    """alice: read on prefix /config/, readwrite on [/app/a, /app/c), write on key /jobs/x,
    read from /zz on (open-ended), read on [/m/a, /m/b) and [/m/b, /m/c) (adjacent ranges)."""
    env.enable_with_root()
    env.add_user("alice", "pw")
    env.add_role("reader", (P.READ, b"/config/", b"/config0"), (P.READ, b"/zz", b"\x00"))
    env.add_role("app", (P.READWRITE, b"/app/a", b"/app/c"), (P.WRITE, b"/jobs/x", b""))
    env.add_role("split", (P.READ, b"/m/a", b"/m/b"), (P.READ, b"/m/b", b"/m/c"))
    for role in ("reader", "app", "split"):
        env.grant("alice", role)
    return env


READ_MATRIX = [
    (b"/config/a", b"", True),
    (b"/config/", b"/config0", True),  # the whole prefix
    (b"/config/a", b"/config/b", True),  # inside the prefix
    (b"/config/", b"/config1", False),  # wider than the prefix
    (b"/config", b"", False),  # the key just before the prefix
    (b"/secret/x", b"", False),
    (b"/secret/", b"/secret0", False),
    (b"/app/b", b"", True),
    (b"/app/c", b"", False),  # range_end is exclusive
    (b"/jobs/x", b"", False),  # write-only
    (b"/zz", b"\x00", True),  # open-ended to the end
    (b"/zzz", b"", True),
    (b"/z", b"\x00", False),
    (b"/m/a", b"/m/c", True),  # covered by the union of two adjacent grants
    (b"/m/a", b"/m/d", False),
    (b"\x00", b"\x00", False),  # the whole key space
]

WRITE_MATRIX = [
    (b"/config/a", b"", False),
    (b"/app/a", b"", True),
    (b"/app/a", b"/app/c", True),
    (b"/app/a", b"/app/d", False),
    (b"/jobs/x", b"", True),
    (b"/jobs/xy", b"", False),
    (b"/secret/x", b"", False),
]


@pytest.mark.parametrize(("key", "end", "allowed"), READ_MATRIX)
def test_read_matrix(granted: Env, key: bytes, end: bytes, allowed: bool) -> None:
    alice = granted.login("alice", "pw")
    root = granted.login("root", "rootpw")
    assert granted.store.can_read(alice, key, end) is allowed
    assert granted.store.can_read(root, key, end)
    request = pb.RangeRequest(key=key, range_end=end)
    if allowed:
        checks.check_range(granted.store, alice, request)
    else:
        raises(autherr.PERMISSION_DENIED, checks.check_range, granted.store, alice, request)


@pytest.mark.parametrize(("key", "end", "allowed"), WRITE_MATRIX)
def test_write_matrix(granted: Env, key: bytes, end: bytes, allowed: bool) -> None:
    alice = granted.login("alice", "pw")
    assert granted.store.can_write(alice, key, end) is allowed
    assert granted.store.can_write(granted.login("root", "rootpw"), key, end)


def test_put_and_delete_with_prev_kv_need_read_too(granted: Env) -> None:
    alice = granted.login("alice", "pw")
    checks.check_put(granted.store, alice, pb.PutRequest(key=b"/jobs/x"), lambda _: [])
    raises(
        autherr.PERMISSION_DENIED,
        checks.check_put,
        granted.store,
        alice,
        pb.PutRequest(key=b"/jobs/x", prev_kv=True),
        lambda _: [],
    )
    checks.check_delete(granted.store, alice, pb.DeleteRangeRequest(key=b"/app/a", prev_kv=True))
    raises(
        autherr.PERMISSION_DENIED,
        checks.check_delete,
        granted.store,
        alice,
        pb.DeleteRangeRequest(key=b"/jobs/x", prev_kv=True),
    )


def _txn(compares: list[bytes], success: list[pb.RequestOp], failure: list[pb.RequestOp]) -> pb.TxnRequest:
    return pb.TxnRequest(
        compare=[pb.Compare(key=k, target=pb.Compare.VERSION, result=pb.Compare.EQUAL) for k in compares],
        success=success,
        failure=failure,
    )


def test_txn_checks_compares_and_both_branches(granted: Env) -> None:
    alice = granted.login("alice", "pw")
    get_config = pb.RequestOp(request_range=pb.RangeRequest(key=b"/config/a"))
    put_app = pb.RequestOp(request_put=pb.PutRequest(key=b"/app/a"))
    put_config = pb.RequestOp(request_put=pb.PutRequest(key=b"/config/a"))
    get_secret = pb.RequestOp(request_range=pb.RangeRequest(key=b"/secret/a"))
    store = granted.store
    checks.check_txn(store, alice, _txn([b"/config/a"], [put_app], [get_config]))
    denied = [
        _txn([b"/secret/a"], [put_app], []),  # a compare on an unreadable key
        _txn([b"/jobs/x"], [], []),  # compares need read, not write
        _txn([b"/config/a"], [put_config], []),  # read-only key written
        _txn([b"/config/a"], [put_app], [get_secret]),  # the branch not taken counts too
        _txn([], [pb.RequestOp(request_txn=_txn([], [get_secret], []))], []),  # nested
    ]
    for txn in denied:
        raises(autherr.PERMISSION_DENIED, checks.check_txn, store, alice, txn)
        raises(autherr.PERMISSION_DENIED, granted.apply, alice, txn=txn)
    checks.check_txn(store, granted.login("root", "rootpw"), denied[0])


def test_watch_and_lease_checks(granted: Env) -> None:
    alice = granted.login("alice", "pw")
    store = granted.store
    checks.check_watch(store, alice, b"/config/", b"/config0")
    raises(autherr.PERMISSION_DENIED, checks.check_watch, store, alice, b"/secret/", b"/secret0")
    checks.check_lease_keys_writable(store, alice, [b"/app/a", b"/jobs/x"])
    raises(
        autherr.PERMISSION_DENIED, checks.check_lease_keys_writable, store, alice, [b"/app/a", b"/config/a"]
    )
    checks.check_lease_keys_writable(store, granted.login("root", "rootpw"), [b"/secret/a"])
    checks.check_lease_keys_readable(store, alice, [b"/config/a", b"/app/b"])
    raises(autherr.PERMISSION_DENIED, checks.check_lease_keys_readable, store, alice, [b"/jobs/x"])
    NO_LEASE_KEYS[7] = [b"/config/a"]
    try:
        put = pb.PutRequest(key=b"/app/a", lease=7)
        raises(autherr.PERMISSION_DENIED, granted.apply, alice, put=put)
        raises(autherr.PERMISSION_DENIED, granted.apply, alice, lease_revoke=pb.LeaseRevokeRequest(ID=7))
    finally:
        del NO_LEASE_KEYS[7]


def test_requests_without_user_or_with_old_revision(granted: Env) -> None:
    store = granted.store
    alice = granted.login("alice", "pw")
    raises(autherr.USER_EMPTY, checks.check_range, store, None, pb.RangeRequest(key=b"/config/a"))
    raises(autherr.USER_EMPTY, checks.check_range, store, AuthInfo("", 0), pb.RangeRequest(key=b"/config/a"))
    root = granted.login("root", "rootpw")
    granted.add_role("more")  # a change: alice's checked revision is now old
    raises(autherr.AUTH_OLD_REVISION, checks.check_range, store, alice, pb.RangeRequest(key=b"/config/a"))
    raises(autherr.AUTH_OLD_REVISION, granted.apply, root, put=pb.PutRequest(key=b"/x"))
    assert autherr.AUTH_OLD_REVISION.message == "etcdserver: revision of auth store is old"
    fresh = granted.store.info_from_token(
        granted.apply(authenticate=ipb.InternalAuthenticateRequest(name="alice", simple_token="b" * 16)).token
    )
    checks.check_range(store, fresh, pb.RangeRequest(key=b"/config/a"))
    # A deleted user is denied, not crashed on.
    granted.apply(auth_user_delete=pb.AuthUserDeleteRequest(name="alice"))
    gone = AuthInfo("alice", store.revision)
    raises(autherr.PERMISSION_DENIED, checks.check_range, store, gone, pb.RangeRequest(key=b"/config/a"))


def test_admin_requests_need_the_root_role(granted: Env) -> None:
    alice = granted.login("alice", "pw")
    raises(autherr.PERMISSION_DENIED, granted.apply, alice, auth_role_add=pb.AuthRoleAddRequest(name="x"))
    raises(autherr.PERMISSION_DENIED, granted.apply, alice, auth_user_list=pb.AuthUserListRequest())
    raises(autherr.PERMISSION_DENIED, granted.apply, alice, auth_disable=pb.AuthDisableRequest())
    raises(autherr.USER_EMPTY, granted.apply, AuthInfo("", 0), auth_status=pb.AuthStatusRequest())
    raises(autherr.USER_NOT_FOUND, granted.apply, AuthInfo("ghost", 99), auth_status=pb.AuthStatusRequest())
    # One's own user and roles may be read without root.
    assert list(granted.apply(alice, auth_user_get=pb.AuthUserGetRequest(name="alice")).roles) == [
        "app",
        "reader",
        "split",
    ]
    granted.apply(alice, auth_role_get=pb.AuthRoleGetRequest(role="reader"))
    raises(autherr.PERMISSION_DENIED, granted.apply, alice, auth_user_get=pb.AuthUserGetRequest(name="root"))
    raises(autherr.PERMISSION_DENIED, granted.apply, alice, auth_role_get=pb.AuthRoleGetRequest(role="root"))


def test_revoking_a_permission_takes_effect(granted: Env) -> None:
    root = granted.login("root", "rootpw")
    granted.apply(
        root,
        auth_role_revoke_permission=pb.AuthRoleRevokePermissionRequest(
            role="reader", key=b"/config/", range_end=b"/config0"
        ),
    )
    alice = granted.login("alice", "pw")
    assert not granted.store.can_read(alice, b"/config/a")
    assert granted.store.can_read(alice, b"/zzz")


def test_auth_disabled_allows_everything(env: Env) -> None:
    env.add_user("alice")
    checks.check_range(env.store, None, pb.RangeRequest(key=b"/secret"))
    checks.check_applied(env.store, ipb.InternalRaftRequest(put=pb.PutRequest(key=b"/secret")), lambda _: [])
    env.store.check_admin(None)


# ---- persistence ---------------------------------------------------------------------------------------


def test_state_survives_reopen(granted: Env) -> None:
    revision = granted.store.revision
    login = ipb.InternalAuthenticateRequest(name="alice", simple_token="c" * 16)
    token = granted.apply(authenticate=login).token
    granted.reopen()
    store = granted.store
    assert store.enabled
    assert store.revision == revision
    assert store.user_names() == ["alice", "root"]
    assert store.role_names() == ["app", "reader", "split"]
    store.check_password("alice", "pw")
    raises(autherr.INVALID_AUTH_TOKEN, store.info_from_token, token)  # tokens live in memory only
    alice = AuthInfo("alice", store.revision)
    assert store.can_read(alice, b"/config/x")
    assert not store.can_read(alice, b"/secret/x")
