"""etcd's v3 auth: users, roles, key permissions and simple tokens.

`store.AuthStore` is the state (persisted in the backend's `auth` database, changed only by applying
Raft entries, so every member holds the same); `ranges` decides whether a key range is covered by a
user's permissions; `checks` says which permission each KV/Watch/Lease request needs; `tokens` keeps
the simple tokens a member has seen issued; `passwords` hashes with bcrypt; `apply` applies the auth
entries of the Raft log.
"""
