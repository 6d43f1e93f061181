"""Applying the auth entries of the Raft log (etcd's applierV3 auth methods), on every member."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from petcd.auth.store import AuthStore
from petcd.proto import raft_internal_pb2 as ipb
from petcd.proto import rpc_pb2 as pb

HeaderFactory = Callable[[], pb.ResponseHeader]

AUTH_REQUESTS = frozenset(
    {
        "auth_enable",
        "auth_disable",
        "auth_status",
        "authenticate",
        "auth_user_add",
        "auth_user_delete",
        "auth_user_get",
        "auth_user_change_password",
        "auth_user_grant_role",
        "auth_user_revoke_role",
        "auth_user_list",
        "auth_role_list",
        "auth_role_add",
        "auth_role_delete",
        "auth_role_get",
        "auth_role_grant_permission",
        "auth_role_revoke_permission",
    }
)


def is_auth_request(req: ipb.InternalRaftRequest) -> bool:
    return req.WhichOneof("request") in AUTH_REQUESTS


def apply_auth(
    store: AuthStore, txn: Any, req: ipb.InternalRaftRequest, index: int, header: HeaderFactory
) -> Any:
    """Apply one auth request (the permission check was made by `checks.check_applied`); returns
    its response, raises an EtcdError for a refused one. `index` is the entry's Raft index."""
    which = req.WhichOneof("request")
    if which == "auth_enable":
        store.enable(txn)
        return pb.AuthEnableResponse(header=header())
    if which == "auth_disable":
        store.disable(txn)
        return pb.AuthDisableResponse(header=header())
    if which == "auth_status":
        return pb.AuthStatusResponse(header=header(), enabled=store.enabled, authRevision=store.revision)
    if which == "authenticate":
        a = req.authenticate
        token = store.authenticate(a.name, a.simple_token, index)
        return pb.AuthenticateResponse(header=header(), token=token)
    return _apply_user(store, txn, req, header) or _apply_role(store, txn, req, header)


def _apply_user(store: AuthStore, txn: Any, req: ipb.InternalRaftRequest, header: HeaderFactory) -> Any:
    which = req.WhichOneof("request")
    if which == "auth_user_add":
        u = req.auth_user_add
        store.user_add(txn, u.name, u.password, u.hashedPassword, u.options.no_password)
        return pb.AuthUserAddResponse(header=header())
    if which == "auth_user_delete":
        store.user_delete(txn, req.auth_user_delete.name)
        return pb.AuthUserDeleteResponse(header=header())
    if which == "auth_user_get":
        user = store.existing_user(req.auth_user_get.name)
        return pb.AuthUserGetResponse(header=header(), roles=list(user.roles))
    if which == "auth_user_change_password":
        c = req.auth_user_change_password
        store.user_change_password(txn, c.name, c.password, c.hashedPassword)
        return pb.AuthUserChangePasswordResponse(header=header())
    if which == "auth_user_grant_role":
        store.user_grant_role(txn, req.auth_user_grant_role.user, req.auth_user_grant_role.role)
        return pb.AuthUserGrantRoleResponse(header=header())
    if which == "auth_user_revoke_role":
        store.user_revoke_role(txn, req.auth_user_revoke_role.name, req.auth_user_revoke_role.role)
        return pb.AuthUserRevokeRoleResponse(header=header())
    if which == "auth_user_list":
        return pb.AuthUserListResponse(header=header(), users=store.user_names())
    return None


def _apply_role(store: AuthStore, txn: Any, req: ipb.InternalRaftRequest, header: HeaderFactory) -> Any:
    which = req.WhichOneof("request")
    if which == "auth_role_add":
        store.role_add(txn, req.auth_role_add.name)
        return pb.AuthRoleAddResponse(header=header())
    if which == "auth_role_delete":
        store.role_delete(txn, req.auth_role_delete.role)
        return pb.AuthRoleDeleteResponse(header=header())
    if which == "auth_role_get":
        role = store.existing_role(req.auth_role_get.role)
        return pb.AuthRoleGetResponse(header=header(), perm=list(role.keyPermission))
    if which == "auth_role_list":
        return pb.AuthRoleListResponse(header=header(), roles=store.role_names())
    if which == "auth_role_grant_permission":
        g = req.auth_role_grant_permission
        store.role_grant_permission(txn, g.name, g.perm if g.HasField("perm") else None)
        return pb.AuthRoleGrantPermissionResponse(header=header())
    if which == "auth_role_revoke_permission":
        r = req.auth_role_revoke_permission
        store.role_revoke_permission(txn, r.role, r.key, r.range_end)
        return pb.AuthRoleRevokePermissionResponse(header=header())
    raise ValueError(f"not an auth request: {which}")
