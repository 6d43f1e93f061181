"""A Pod's sandbox: its network namespace with an address on the cluster bridge, and the /etc/hosts
and /etc/resolv.conf that `ip netns exec` bind-mounts over the host's for every process inside."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from testenv.controlplane import CLUSTER_DOMAIN
from testenv.network import ETC_NETNS_DIR, NETNS_DIR, PodNetworkLayout, delete_netns, ip

Obj = dict[str, Any]


def pod_hostname(pod: Obj) -> str:
    name: str = pod["spec"].get("hostname") or pod["metadata"]["name"]
    return name[:63]


def hosts_file(pod: Obj, pod_ip: str) -> str:
    hostname = pod_hostname(pod)
    subdomain = pod["spec"].get("subdomain")
    names = [hostname]
    if subdomain:
        names.insert(0, f"{hostname}.{subdomain}.{pod['metadata']['namespace']}.svc.{CLUSTER_DOMAIN}")
    lines = [
        "# Kubernetes-managed hosts file (process kubelet).",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        f"{pod_ip}\t{' '.join(names)}",
    ]
    for alias in pod["spec"].get("hostAliases", []):
        lines.append(f"{alias['ip']}\t{' '.join(alias.get('hostnames', []))}")
    return "\n".join(lines) + "\n"


def resolv_conf(pod: Obj, nameserver: str) -> str | None:
    """ClusterFirst resolution through CoreDNS; None (the host's file) for dnsPolicy Default."""
    spec = pod["spec"]
    policy = spec.get("dnsPolicy", "ClusterFirst")
    if policy == "Default":
        return None
    namespace = pod["metadata"]["namespace"]
    config = spec.get("dnsConfig", {})
    nameservers = [] if policy == "None" else [nameserver]
    nameservers += config.get("nameservers", [])
    searches = (
        []
        if policy == "None"
        else [f"{namespace}.svc.{CLUSTER_DOMAIN}", f"svc.{CLUSTER_DOMAIN}", CLUSTER_DOMAIN]
    )
    searches += config.get("searches", [])
    options = {"ndots": "5"} if policy != "None" else {}
    for option in config.get("options", []):
        options[option["name"]] = option.get("value", "")
    lines = [f"search {' '.join(searches)}"] if searches else []
    lines += [f"nameserver {server}" for server in nameservers]
    if options:
        lines.append("options " + " ".join(f"{k}:{v}" if v else k for k, v in options.items()))
    return "\n".join(lines) + "\n"


def allocate_ip(layout: PodNetworkLayout, used: Iterable[str]) -> str:
    taken = {*used, layout.gateway}
    for host in layout.subnet.hosts():
        if str(host) not in taken:
            return str(host)
    raise RuntimeError(f"no free address left in {layout.subnet}")


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def create(layout: PodNetworkLayout, pod: Obj, pod_ip: str, nameserver: str) -> str:
    """Create the Pod's namespace, wired to the bridge; returns its name. Idempotent after a crash."""
    uid = pod["metadata"]["uid"]
    name = layout.netns_name(uid)
    if netns_exists(name):
        delete_netns(name)
    host_side, pod_side = layout.veth_names(uid)
    ip("link", "delete", host_side, check=False)
    ip("netns", "add", name)
    ip("link", "add", host_side, "type", "veth", "peer", "name", pod_side)
    ip("link", "set", pod_side, "netns", name)
    ip("link", "set", host_side, "master", layout.bridge, "up")
    ip("link", "set", pod_side, "name", "eth0", netns=name)
    prefix = ipaddress.IPv4Network(layout.subnet).prefixlen
    ip("addr", "add", f"{pod_ip}/{prefix}", "dev", "eth0", netns=name)
    ip("link", "set", "eth0", "up", netns=name)
    ip("link", "set", "lo", "up", netns=name)
    ip("route", "add", str(layout.service_subnet), "via", layout.gateway, netns=name)
    etc = ETC_NETNS_DIR / name
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "hosts").write_text(hosts_file(pod, pod_ip))
    resolv = resolv_conf(pod, nameserver)
    if resolv is not None:
        (etc / "resolv.conf").write_text(resolv)
    return name


def destroy(name: str) -> None:
    delete_netns(name)
