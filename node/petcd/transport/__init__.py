"""Peer transport: how members exchange Raft messages, and the peer port's HTTP endpoints.

frames.py     the wire format (preface, length-prefixed frames, handshake)
codec.py      petcd.raft.types.Message <-> raftpb.Message bytes
peer.py       one remote member: dialled stream, backoff, bounded queue, snapshots
transport.py  all peers, and the inbound side (checks, delivery to the Raft loop)
listener.py   one --listen-peer-urls listener serving Raft streams and HTTP/1.1
peer_http.py  etcd's /members, /members/promote/<id>, /version, and their client
"""
