# petcd: developer entry points. `make help` lists them.
PYTHON ?= python3
PYTEST ?= $(PYTHON) -m pytest
TIERS ?= unit or node or e2e

.PHONY: help install test test-unit test-node test-e2e lint proto tools tools-etcd tools-porcupine dev cluster bench soak

help:
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

install: ## install petcd, the operator and the test tools into the current Python
	$(PYTHON) -m pip install -q -e '.[operator,test]'

test: ## run the unit, node and e2e tiers (what CI runs)
	$(PYTEST) -m "$(TIERS)"

test-unit: ## in-process tests only
	$(PYTEST) -m unit

test-node: ## real petcd/etcd processes on loopback
	$(PYTEST) -m node

test-e2e: ## the operator on the local Kubernetes control plane
	$(PYTEST) -m e2e

lint: ## ruff + mypy --strict on both packages
	$(PYTHON) -m ruff check node operator tests
	$(PYTHON) -m mypy

cluster: ## set up petcd (pip install -e .) and run a local 3-member cluster on 127.0.0.1-3; Ctrl-C stops it
	$(PYTHON) -m pip install -q -e .
	$(PYTHON) deploy/procfile.py deploy/Procfile

bench: tools-etcd ## etcd's benchmark tool against 3-member etcd 3.4 and petcd clusters (~10 min; BENCH_QUICK=1 ~2 min)
	$(PYTHON) -m bench

soak: ## long randomized runs (RAFT_SIM_SCHEDULES etc. raise the counts)
	RAFT_SIM_SCHEDULES=$${RAFT_SIM_SCHEDULES:-20000} $(PYTEST) -m "unit or soak" tests/raft

proto: ## regenerate node/petcd/proto/*_pb2*.py(i) from the .proto files (needs grpcio-tools)
	$(PYTHON) -m grpc_tools.protoc -I node --python_out=node --pyi_out=node node/petcd/proto/*.proto
	$(PYTHON) -m grpc_tools.protoc -I node --grpc_python_out=node node/petcd/proto/rpc.proto node/petcd/proto/health.proto

tools-etcd: ## build etcd 3.5, its etcdctl and benchmark tool once per version (tools/etcd/go.mod)
	tools/etcd/build.sh

tools-porcupine: ## build the porcupine linearizability checker (tools/porcupine) once per version
	tools/porcupine/build.sh

tools: ## build kube-apiserver, controller-manager, scheduler, CoreDNS, helm once per version (tools/k8s/go.mod)
	$(PYTHON) tests/testenv/toolchain.py

dev: tools ## a local Kubernetes cluster (control plane + process kubelet, as root); prints the KUBECONFIG
	$(if $(STORE),PETCD_TESTENV_STORE=$(STORE)) PYTHONPATH=tests $(PYTHON) -m testenv.dev
