//go:build tools

// Package tools pins etcd 3.5's server, etcdctl and benchmark programs for petcd's tests and benchmarks.
// build.sh builds them; nothing imports this file.
package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
	_ "go.etcd.io/etcd/v3/tools/benchmark"
)
