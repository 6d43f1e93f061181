"""Differential tests: one etcdctl session against etcd and another implementation, compared normalised."""
