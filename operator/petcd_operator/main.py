"""`petcd-operator`: run the kopf operator with a liveness endpoint, a metrics port and optional peering."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import kopf
from prometheus_client import start_http_server

from petcd_operator import __version__, handlers
from petcd_operator.planner import LEARNER_TIMEOUT_SECONDS
from petcd_operator.spec import DEFAULT_IMAGE_REPOSITORY


def _env(name: str, default: str) -> str:
    return os.environ.get(f"PETCD_OPERATOR_{name}", default)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="petcd-operator",
        description="Runs EtcdCluster resources (petcd.io/v1alpha1) as StatefulSets of etcd members.",
    )
    parser.add_argument("--version", action="version", version=f"petcd-operator {__version__}")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        action="append",
        default=[n for n in _env("NAMESPACES", "").split(",") if n],
        help="watch only this namespace (repeatable; env PETCD_OPERATOR_NAMESPACES, comma-separated)",
    )
    scope.add_argument("--all-namespaces", action="store_true", help="watch the whole cluster (the default)")
    parser.add_argument("--metrics-port", type=int, default=int(_env("METRICS_PORT", "8080")))
    parser.add_argument(
        "--liveness",
        default=_env("LIVENESS", "http://0.0.0.0:8081/healthz"),
        help="kopf liveness endpoint URL ('' to disable)",
    )
    parser.add_argument(
        "--peering",
        default=_env("PEERING", ""),
        help="kopf peering object name for running several replicas (needs the KopfPeering CRDs); "
        "without it the operator runs standalone",
    )
    parser.add_argument("--priority", type=int, default=int(_env("PRIORITY", "0")))
    parser.add_argument(
        "--default-image",
        default=_env("DEFAULT_IMAGE", f"{DEFAULT_IMAGE_REPOSITORY}:{__version__}"),
        help="member image for resources that set no spec.image",
    )
    parser.add_argument("--cluster-domain", default=_env("CLUSTER_DOMAIN", "cluster.local"))
    parser.add_argument(
        "--learner-timeout",
        type=float,
        default=float(_env("LEARNER_TIMEOUT", str(LEARNER_TIMEOUT_SECONDS))),
        help="seconds before a learner that has not caught up marks the cluster Degraded",
    )
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
    )
    handlers.CONFIG.default_image = args.default_image
    handlers.CONFIG.cluster_domain = args.cluster_domain
    handlers.CONFIG.learner_timeout = args.learner_timeout
    if args.metrics_port:
        start_http_server(args.metrics_port)
    namespaces = [] if args.all_namespaces else args.namespace
    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=not args.peering,
        peering_name=args.peering or None,
        priority=args.priority,
        liveness_endpoint=args.liveness or None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
