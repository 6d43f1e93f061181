"""etcdserverpb.Auth and the auth gate in front of every other service.

`AuthService` serves the Auth RPCs (the RPC names differ from the message names: UserAdd takes
AuthUserAddRequest, ...). Changes go through Raft like KV writes; passwords are hashed here, on the
member that takes the request, so the log and the backend only ever see bcrypt hashes.

`AuthInterceptor` is the check etcd makes in its server before a request runs: it resolves the
caller from the `token` metadata (or the client certificate's CN with --client-cert-auth), refuses
what the caller may not read or administer, and sets `petcd.auth.caller.CALLER` so the proposal
carries the user and auth revision that apply checks again.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, Protocol, TypeVar

import grpc
import grpc.aio

from petcd.api import errors
from petcd.api.rpc import Context, unary
from petcd.auth import checks
from petcd.auth import errors as autherr
from petcd.auth.caller import CALLER
from petcd.auth.passwords import hash_password
from petcd.auth.store import AuthInfo, AuthStore
from petcd.auth.tokens import new_token_prefix
from petcd.proto import raft_internal_pb2 as ipb
from petcd.proto import rpc_pb2 as pb
from petcd.proto import rpc_pb2_grpc
from petcd.security.identity import ClientIdentities

TOKEN_METADATA_KEYS = ("token", "authorization")  # gRPC clients; etcd's JSON gateway
R = TypeVar("R")
AUTHENTICATE_ATTEMPTS = 5  # the password check is retried while the auth store changes under it


class AuthServer(Protocol):
    """What the Auth service needs of the server (EtcdServer has it)."""

    @property
    def leader_id(self) -> int: ...

    async def propose(self, req: ipb.InternalRaftRequest) -> Any: ...

    async def linearizable_read(self) -> None: ...


class AuthService(rpc_pb2_grpc.AuthServicer):
    def __init__(self, server: AuthServer, store: AuthStore) -> None:
        self.server = server
        self.store = store

    async def _propose(self, answer: type[R], **request: Any) -> R:
        resp = await self.server.propose(ipb.InternalRaftRequest(**request))
        assert isinstance(resp, answer)
        return resp

    async def _hashed(self, password: str) -> str:
        # bcrypt takes tens of milliseconds and releases the GIL: off the event loop.
        raw = await asyncio.to_thread(hash_password, password, self.store.bcrypt_cost)
        return base64.b64encode(raw).decode()

    @unary
    async def AuthEnable(self, request: pb.AuthEnableRequest, context: Context) -> pb.AuthEnableResponse:
        return await self._propose(pb.AuthEnableResponse, auth_enable=request)

    @unary
    async def AuthDisable(self, request: pb.AuthDisableRequest, context: Context) -> pb.AuthDisableResponse:
        return await self._propose(pb.AuthDisableResponse, auth_disable=request)

    @unary
    async def AuthStatus(self, request: pb.AuthStatusRequest, context: Context) -> pb.AuthStatusResponse:
        return await self._propose(pb.AuthStatusResponse, auth_status=request)

    @unary
    async def Authenticate(
        self, request: pb.AuthenticateRequest, context: Context
    ) -> pb.AuthenticateResponse:
        """The password is checked here (never logged); the token is issued by applying an entry
        that carries only the user name and the token's random prefix."""
        await self.server.linearizable_read()
        resp: pb.AuthenticateResponse | None = None
        for _ in range(AUTHENTICATE_ATTEMPTS):
            checked = await asyncio.to_thread(self.store.check_password, request.name, request.password)
            internal = ipb.InternalAuthenticateRequest(name=request.name, simple_token=new_token_prefix())
            resp = await self.server.propose(ipb.InternalRaftRequest(authenticate=internal))
            if checked == self.store.revision:
                break
        assert resp is not None
        return resp

    @unary
    async def UserAdd(self, request: pb.AuthUserAddRequest, context: Context) -> pb.AuthUserAddResponse:
        add = pb.AuthUserAddRequest()
        add.CopyFrom(request)
        if not (request.HasField("options") and request.options.no_password):
            add.hashedPassword = await self._hashed(request.password)
            add.password = ""
        return await self._propose(pb.AuthUserAddResponse, auth_user_add=add)

    @unary
    async def UserGet(self, request: pb.AuthUserGetRequest, context: Context) -> pb.AuthUserGetResponse:
        return await self._propose(pb.AuthUserGetResponse, auth_user_get=request)

    @unary
    async def UserList(self, request: pb.AuthUserListRequest, context: Context) -> pb.AuthUserListResponse:
        return await self._propose(pb.AuthUserListResponse, auth_user_list=request)

    @unary
    async def UserDelete(
        self, request: pb.AuthUserDeleteRequest, context: Context
    ) -> pb.AuthUserDeleteResponse:
        return await self._propose(pb.AuthUserDeleteResponse, auth_user_delete=request)

    @unary
    async def UserChangePassword(
        self, request: pb.AuthUserChangePasswordRequest, context: Context
    ) -> pb.AuthUserChangePasswordResponse:
        change = pb.AuthUserChangePasswordRequest(name=request.name)
        user = self.store.user(request.name)
        if user is None or not user.options.no_password:
            change.hashedPassword = await self._hashed(request.password)
        return await self._propose(pb.AuthUserChangePasswordResponse, auth_user_change_password=change)

    @unary
    async def UserGrantRole(
        self, request: pb.AuthUserGrantRoleRequest, context: Context
    ) -> pb.AuthUserGrantRoleResponse:
        return await self._propose(pb.AuthUserGrantRoleResponse, auth_user_grant_role=request)

    @unary
    async def UserRevokeRole(
        self, request: pb.AuthUserRevokeRoleRequest, context: Context
    ) -> pb.AuthUserRevokeRoleResponse:
        return await self._propose(pb.AuthUserRevokeRoleResponse, auth_user_revoke_role=request)

    @unary
    async def RoleAdd(self, request: pb.AuthRoleAddRequest, context: Context) -> pb.AuthRoleAddResponse:
        return await self._propose(pb.AuthRoleAddResponse, auth_role_add=request)

    @unary
    async def RoleGet(self, request: pb.AuthRoleGetRequest, context: Context) -> pb.AuthRoleGetResponse:
        return await self._propose(pb.AuthRoleGetResponse, auth_role_get=request)

    @unary
    async def RoleList(self, request: pb.AuthRoleListRequest, context: Context) -> pb.AuthRoleListResponse:
        return await self._propose(pb.AuthRoleListResponse, auth_role_list=request)

    @unary
    async def RoleDelete(
        self, request: pb.AuthRoleDeleteRequest, context: Context
    ) -> pb.AuthRoleDeleteResponse:
        return await self._propose(pb.AuthRoleDeleteResponse, auth_role_delete=request)

    @unary
    async def RoleGrantPermission(
        self, request: pb.AuthRoleGrantPermissionRequest, context: Context
    ) -> pb.AuthRoleGrantPermissionResponse:
        return await self._propose(pb.AuthRoleGrantPermissionResponse, auth_role_grant_permission=request)

    @unary
    async def RoleRevokePermission(
        self, request: pb.AuthRoleRevokePermissionRequest, context: Context
    ) -> pb.AuthRoleRevokePermissionResponse:
        return await self._propose(pb.AuthRoleRevokePermissionResponse, auth_role_revoke_permission=request)


# ---- the gate -----------------------------------------------------------------------------------------

LeaseKeys = Callable[[int], Iterable[bytes]]
# A check before the handler runs: (store, caller, request) -> raises EtcdError.
PreCheck = Callable[[AuthStore, "AuthInfo | None", Any], None]


def _admin(store: AuthStore, info: AuthInfo | None, request: Any) -> None:
    store.check_admin(info)


def _range(store: AuthStore, info: AuthInfo | None, request: Any) -> None:
    checks.check_range(store, info, request)


def _delete(store: AuthStore, info: AuthInfo | None, request: Any) -> None:
    checks.check_delete(store, info, request)


def _txn(store: AuthStore, info: AuthInfo | None, request: Any) -> None:
    checks.check_txn(store, info, request)


def _put(store: AuthStore, info: AuthInfo | None, request: Any) -> None:
    store.check_put(info, request.key)
    if request.prev_kv:
        store.check_range(info, request.key)


# Checked before the handler runs. Writes are checked again when applied (with lease keys there).
PRE_CHECKS: dict[str, PreCheck] = {
    "/etcdserverpb.KV/Range": _range,
    "/etcdserverpb.KV/Put": _put,
    "/etcdserverpb.KV/DeleteRange": _delete,
    "/etcdserverpb.KV/Txn": _txn,
    "/etcdserverpb.Maintenance/Defragment": _admin,
    "/etcdserverpb.Maintenance/Snapshot": _admin,
    "/etcdserverpb.Maintenance/Hash": _admin,
    "/etcdserverpb.Maintenance/HashKV": _admin,
    "/etcdserverpb.Cluster/MemberAdd": _admin,
    "/etcdserverpb.Cluster/MemberRemove": _admin,
    "/etcdserverpb.Cluster/MemberUpdate": _admin,
    "/etcdserverpb.Cluster/MemberPromote": _admin,
}
WATCH_METHOD = "/etcdserverpb.Watch/Watch"
INVALID_WATCH_ID = -1  # clientv3.InvalidWatchID, the ID etcd gives a refused create
# What a refused watch create names as its reason; any other refusal reads "permission denied".
WATCH_REFUSALS_SHOWN = (autherr.INVALID_AUTH_TOKEN, autherr.AUTH_OLD_REVISION, autherr.USER_EMPTY)
LEASE_TTL_METHOD = "/etcdserverpb.Lease/LeaseTimeToLive"
# No token needed (and a stale one is not held against the caller).
UNGUARDED = frozenset({"/etcdserverpb.Auth/Authenticate", "/grpc.health.v1.Health/Check"})


def _metadata(context: Context, key: str) -> str | None:
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return str(v)
    return None


def _peer_common_name(context: Context, identities: ClientIdentities | None) -> str:
    """The CN of the caller's verified client certificate: known to the client port, which
    terminated TLS (`identities`), or to gRPC when it terminated TLS itself."""
    if identities is not None:
        name = identities.common_name_of(context.peer() or "")
        if name:
            return name
    names = (context.auth_context() or {}).get("x509_common_name") or []
    return names[0].decode() if names else ""


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(
        self,
        store: AuthStore,
        lease_keys: LeaseKeys,
        header: Callable[[], pb.ResponseHeader],
        client_cert_auth: bool = False,
        identities: ClientIdentities | None = None,
    ) -> None:
        self.store = store
        self.lease_keys = lease_keys
        self.header = header
        self.client_cert_auth = client_cert_auth
        self.identities = identities
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}

    def caller(self, context: Context) -> AuthInfo | None:
        """etcd's AuthInfoFromCtx: the token first, then the client certificate; raises
        INVALID_AUTH_TOKEN for a token this member does not know (or that expired)."""
        if not self.store.enabled:
            return None
        for key in TOKEN_METADATA_KEYS:
            token = _metadata(context, key)
            if token is not None:
                return self.store.info_from_token(token)
        if self.client_cert_auth:
            return self.store.info_from_common_name(_peer_common_name(context, self.identities))
        return None

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = details.method
        cached = self._handlers.get(method)
        if cached is not None:
            return cached
        handler = await continuation(details)
        if handler is None or method in UNGUARDED:
            return handler
        wrapped = self._wrap(method, handler)
        self._handlers[method] = wrapped  # the servicers are fixed: wrap each method once
        return wrapped

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._unary_stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None and method == WATCH_METHOD:
            return grpc.stream_stream_rpc_method_handler(
                self._watch(handler.stream_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _before(self, method: str, request: Any, context: Context) -> AuthInfo | None:
        info = self.caller(context)
        check = PRE_CHECKS.get(method)
        if check is not None and self.store.enabled:
            check(self.store, info, request)
        return info

    def _unary(self, method: str, inner: Callable[[Any, Context], Awaitable[Any]]) -> Any:
        async def behavior(request: Any, context: Context) -> Any:
            try:
                info = self._before(method, request, context)
            except errors.EtcdError as exc:
                await errors.abort_with(context, exc)
            token = CALLER.set(info)
            try:
                response = await inner(request, context)
            finally:
                CALLER.reset(token)
            if method == LEASE_TTL_METHOD and request.keys and self.store.enabled:
                try:
                    checks.check_lease_keys_readable(self.store, info, response.keys)
                except errors.EtcdError as exc:
                    await errors.abort_with(context, exc)
            return response

        return behavior

    def _unary_stream(self, method: str, inner: Callable[[Any, Context], AsyncIterator[Any]]) -> Any:
        async def behavior(request: Any, context: Context) -> AsyncIterator[Any]:
            try:
                self._before(method, request, context)
            except errors.EtcdError as exc:
                await errors.abort_with(context, exc)
            async for response in inner(request, context):
                yield response

        return behavior

    def _watch(self, inner: Callable[[AsyncIterator[Any], Context], AsyncIterator[Any]]) -> Any:
        """A create request the caller may not read is answered created+canceled with the reason
        (etcd's watch server does so) and never reaches the watch hub."""

        async def behavior(requests: AsyncIterator[pb.WatchRequest], context: Context) -> AsyncIterator[Any]:
            refused: asyncio.Queue[pb.WatchResponse] = asyncio.Queue()

            async def permitted() -> AsyncIterator[pb.WatchRequest]:
                async for req in requests:
                    reason = self._watch_refusal(req, context)
                    if reason is None:
                        yield req
                        continue
                    refused.put_nowait(
                        pb.WatchResponse(
                            header=self.header(),
                            watch_id=INVALID_WATCH_ID,
                            created=True,
                            canceled=True,
                            cancel_reason=reason,
                        )
                    )

            async for response in _merge(inner(permitted(), context), refused):
                yield response

        return behavior

    def _watch_refusal(self, req: pb.WatchRequest, context: Context) -> str | None:
        if req.WhichOneof("request_union") != "create_request" or not self.store.enabled:
            return None
        c = req.create_request
        try:
            checks.check_watch(self.store, self.caller(context), c.key or b"\x00", c.range_end)
        except errors.EtcdError as exc:
            shown = exc if exc in WATCH_REFUSALS_SHOWN else autherr.PERMISSION_DENIED
            return go_status_text(shown)
        return None


def go_status_text(err: errors.EtcdError) -> str:
    """A gRPC status as grpc-go prints it; etcd puts that text in a watch's cancel_reason."""
    code = "".join(word.capitalize() for word in err.code.name.split("_"))
    return f"rpc error: code = {code} desc = {err.message}"


class _End:
    """Marks the end of the merged stream (with the exception that ended it, if any)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


async def _merge(stream: AsyncIterator[Any], queue: asyncio.Queue[Any]) -> AsyncIterator[Any]:
    """Items of `stream` and those others put in `queue`, as they come, until `stream` ends. One
    task pumps the stream into the queue (no task per item: watch streams carry many)."""

    async def pump() -> None:
        try:
            async for item in stream:
                queue.put_nowait(item)
        except Exception as exc:  # ended by an error (e.g. an abort): re-raised to the caller
            queue.put_nowait(_End(exc))
        else:
            queue.put_nowait(_End())

    pumping = asyncio.get_running_loop().create_task(pump())
    try:
        while True:
            item = await queue.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        pumping.cancel()
        await asyncio.gather(pumping, return_exceptions=True)
