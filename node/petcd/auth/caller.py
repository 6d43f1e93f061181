"""Who the current request is from, for the proposal it makes.

The gRPC interceptor (`petcd.api.auth.AuthInterceptor`) resolves the caller from the request's token
(or client certificate) and sets `CALLER` around the handler; `EtcdServer.propose` stamps the Raft
entry's header with `header_fields`, and apply checks the entry's permissions against it.
Proposals the server makes on its own (lease expiry, publishing itself) run with root's rights, as
etcd's `AuthStore.WithRoot` does.
"""

from __future__ import annotations

from contextvars import ContextVar

from petcd.auth.store import ROOT_USER, AuthInfo, AuthStore

# Unset: a proposal of the server itself. None: a client request without credentials.
CALLER: ContextVar[AuthInfo | None] = ContextVar("petcd_auth_caller")
_INTERNAL = object()


def header_fields(store: AuthStore) -> tuple[str, int]:
    """(username, auth_revision) for the RequestHeader of an entry proposed now."""
    caller = CALLER.get(_INTERNAL)
    if caller is _INTERNAL:
        return (ROOT_USER, store.revision) if store.enabled else ("", 0)
    if isinstance(caller, AuthInfo):
        return caller.username, caller.revision
    return "", 0
