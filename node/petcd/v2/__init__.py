"""etcd's v2 API: the v2 key store (a replicated state machine of its own) and its HTTP handlers."""
