"""etcd's auth errors (rpctypes), letter for letter: clients map them back by message."""

from __future__ import annotations

from petcd.api.errors import C, EtcdError

ROOT_USER_NOT_EXIST = EtcdError(C.FAILED_PRECONDITION, "etcdserver: root user does not exist")
ROOT_ROLE_NOT_EXIST = EtcdError(C.FAILED_PRECONDITION, "etcdserver: root user does not have root role")
USER_ALREADY_EXIST = EtcdError(C.FAILED_PRECONDITION, "etcdserver: user name already exists")
USER_EMPTY = EtcdError(C.INVALID_ARGUMENT, "etcdserver: user name is empty")
USER_NOT_FOUND = EtcdError(C.FAILED_PRECONDITION, "etcdserver: user name not found")
ROLE_ALREADY_EXIST = EtcdError(C.FAILED_PRECONDITION, "etcdserver: role name already exists")
ROLE_NOT_FOUND = EtcdError(C.FAILED_PRECONDITION, "etcdserver: role name not found")
ROLE_EMPTY = EtcdError(C.INVALID_ARGUMENT, "etcdserver: role name is empty")
AUTH_FAILED = EtcdError(C.INVALID_ARGUMENT, "etcdserver: authentication failed, invalid user ID or password")
PERMISSION_NOT_GIVEN = EtcdError(C.INVALID_ARGUMENT, "etcdserver: permission not given")
PERMISSION_DENIED = EtcdError(C.PERMISSION_DENIED, "etcdserver: permission denied")
ROLE_NOT_GRANTED = EtcdError(C.FAILED_PRECONDITION, "etcdserver: role is not granted to the user")
PERMISSION_NOT_GRANTED = EtcdError(C.FAILED_PRECONDITION, "etcdserver: permission is not granted to the role")
AUTH_NOT_ENABLED = EtcdError(C.FAILED_PRECONDITION, "etcdserver: authentication is not enabled")
INVALID_AUTH_TOKEN = EtcdError(C.UNAUTHENTICATED, "etcdserver: invalid auth token")
INVALID_AUTH_MGMT = EtcdError(C.INVALID_ARGUMENT, "etcdserver: invalid auth management")
AUTH_OLD_REVISION = EtcdError(C.INVALID_ARGUMENT, "etcdserver: revision of auth store is old")
# etcd's auth.ErrNoPasswordUser has no rpctypes entry: it reaches clients as Unknown with this text.
NO_PASSWORD_USER = EtcdError(
    C.UNKNOWN, "auth: authentication failed, password was given for no password user"
)
