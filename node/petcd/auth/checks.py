"""Which permission each request needs (etcd's authApplierV3 and v3_server checks).

Reads are checked by the member serving them; writes are checked again when applied, against the
auth revision recorded in the entry's header, so a permission revoked in between is honoured.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from petcd.api.errors import EtcdError
from petcd.auth.store import AuthInfo, AuthStore
from petcd.proto import raft_internal_pb2 as ipb
from petcd.proto import rpc_pb2 as pb

# Keys attached to a lease (empty for an unknown lease).
LeaseKeys = Callable[[int], Iterable[bytes]]

# InternalRaftRequest fields that only a user with the root role may apply (etcd's
# needAdminPermission). UserGet and RoleGet are also allowed on oneself / one's own roles.
ADMIN_REQUESTS = frozenset(
    {
        "auth_enable",
        "auth_disable",
        "auth_status",
        "auth_user_add",
        "auth_user_delete",
        "auth_user_change_password",
        "auth_user_grant_role",
        "auth_user_revoke_role",
        "auth_role_add",
        "auth_role_grant_permission",
        "auth_role_revoke_permission",
        "auth_role_delete",
        "auth_user_list",
        "auth_role_list",
    }
)


def check_range(store: AuthStore, info: AuthInfo | None, r: pb.RangeRequest) -> None:
    store.check_range(info, r.key, r.range_end)


def check_put(store: AuthStore, info: AuthInfo | None, r: pb.PutRequest, lease_keys: LeaseKeys) -> None:
    store.check_put(info, r.key)
    if r.lease:
        # A user who could not revoke the lease (write on all its keys) may not attach keys to it.
        check_lease_keys_writable(store, info, lease_keys(r.lease))
    if r.prev_kv:
        store.check_range(info, r.key)


def check_delete(store: AuthStore, info: AuthInfo | None, r: pb.DeleteRangeRequest) -> None:
    store.check_delete_range(info, r.key, r.range_end)
    if r.prev_kv:
        store.check_range(info, r.key, r.range_end)


def check_txn(store: AuthStore, info: AuthInfo | None, r: pb.TxnRequest) -> None:
    """Compares need read; each op of both branches what it needs alone. Nested txns are checked
    too (etcd 3.5 skips them, which would let a nested op through unchecked)."""
    for c in r.compare:
        store.check_range(info, c.key, c.range_end)
    for op in (*r.success, *r.failure):
        which = op.WhichOneof("request")
        if which == "request_range":
            check_range(store, info, op.request_range)
        elif which == "request_put":
            store.check_put(info, op.request_put.key)
        elif which == "request_delete_range":
            check_delete(store, info, op.request_delete_range)
        elif which == "request_txn":
            check_txn(store, info, op.request_txn)


def check_watch(store: AuthStore, info: AuthInfo | None, key: bytes, range_end: bytes) -> None:
    store.check_range(info, key, range_end)


def check_lease_keys_writable(store: AuthStore, info: AuthInfo | None, keys: Iterable[bytes]) -> None:
    """LeaseRevoke (and Put with a lease): root, or write permission on every attached key."""
    try:
        store.check_admin(info)
        return
    except EtcdError:
        pass
    for key in keys:
        store.check_put(info, key)


def check_lease_keys_readable(store: AuthStore, info: AuthInfo | None, keys: Iterable[bytes]) -> None:
    """LeaseTimeToLive with keys=true: read permission on every attached key."""
    for key in keys:
        store.check_range(info, key)


def check_applied(store: AuthStore, req: ipb.InternalRaftRequest, lease_keys: LeaseKeys) -> None:
    """The check made when an entry is applied, from the user and auth revision in its header."""
    if not store.enabled:
        return
    info = AuthInfo(req.header.username, req.header.auth_revision)
    which = req.WhichOneof("request")
    if which in ADMIN_REQUESTS:
        store.check_admin(info)
    elif which == "auth_user_get":
        if req.auth_user_get.name != info.username:
            store.check_admin(info)
    elif which == "auth_role_get":
        if not store.has_role(info.username, req.auth_role_get.role):
            store.check_admin(info)
    elif which == "put":
        check_put(store, info, req.put, lease_keys)
    elif which == "delete_range":
        check_delete(store, info, req.delete_range)
    elif which == "txn":
        check_txn(store, info, req.txn)
    elif which == "range":
        check_range(store, info, req.range)
    elif which == "lease_revoke":
        check_lease_keys_writable(store, info, lease_keys(req.lease_revoke.ID))
