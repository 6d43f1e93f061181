"""Backups of a member's key space: `petcd snapshot save|status|restore` (etcdctl's/etcdutl's commands).

Modules: `lmdb_header` reads the backend file's header (which engine wrote it, how long it must be),
`snapfile` the snapshot file format (the backend copy + its SHA-256, as etcd's), `save` receives
Maintenance.Snapshot into a file, `status` summarises a file, `restore` turns one into the data dir of a
new cluster's member, `printer` lays out status like etcdctl, `command` is the `petcd snapshot`
command line. The format is described in docs/snapshot-format.md.
"""
