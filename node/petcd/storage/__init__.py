"""The state machine and its disk: deterministic, touching the disk only through LMDB and files.

- `kv`: request/result dataclasses with mvccpb/etcdserverpb field names; `errors`: etcd's messages.
- `backend`: the LMDB file (named databases, sizes, defragment, consistent snapshots).
- `keyindex` + `mvcc`: the MVCC key space (`MVCCStore`, write batches carrying the consistent index).
- `lessor`: leases; `watch`: the watch hub (pure: returns what to send).
- `wal` (format in WAL.md) and `snap`: the Raft log and snapshot files.

Quota and alarms are bookkeeping of the server shell (`petcd.server`): it compares
`Backend.size()` with the quota before proposing, and keeps alarms in the backend's `alarm` database.
"""
