"""ClusterIP Services without kube-proxy or netfilter: each ClusterIP is added to the cluster bridge
as a local address and a TCP proxy listens on its ports, forwarding every connection to a ready
endpoint of the Service (round robin, skipping endpoints that refuse). Pods route the ClusterIP
range to the gateway, so they and the host reach Services as in a real cluster. TCP only.
The proxy's connections run on an asyncio loop in a thread of its own beside the kubelet's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import itertools
import logging
import threading
from collections import defaultdict
from typing import Any

from testenv.network import ip

Obj = dict[str, Any]
Address = tuple[str, int]
CONNECT_TIMEOUT = 2.0
log = logging.getLogger("kubelet")


def service_backends(
    services: list[Obj], slices: list[Obj], api_server: Address
) -> dict[Address, list[Address]]:
    """(ClusterIP, port) -> ready endpoints (pod IP, target port), from Services and EndpointSlices.
    The `kubernetes` Service leads to the API server (its endpoints are not maintained here)."""
    slices_of: dict[tuple[str, str], list[Obj]] = defaultdict(list)
    for endpoint_slice in slices:
        metadata = endpoint_slice["metadata"]
        service = metadata.get("labels", {}).get("kubernetes.io/service-name")
        if service:
            slices_of[(metadata["namespace"], service)].append(endpoint_slice)
    table: dict[Address, list[Address]] = {}
    for service in services:
        metadata, spec = service["metadata"], service["spec"]
        cluster_ip = spec.get("clusterIP")
        if not cluster_ip or cluster_ip == "None":
            continue
        key = (metadata["namespace"], metadata["name"])
        for port in spec.get("ports", []):
            if port.get("protocol", "TCP") != "TCP":
                continue
            if key == ("default", "kubernetes"):
                table[(cluster_ip, port["port"])] = [api_server]
                continue
            backends = []
            for endpoint_slice in slices_of[key]:
                numbers = [
                    p["port"]
                    for p in endpoint_slice.get("ports") or []
                    if p.get("name", "") == port.get("name", "")
                ]
                for endpoint in endpoint_slice.get("endpoints") or []:
                    if endpoint.get("conditions", {}).get("ready") is False:
                        continue
                    backends += [(address, number) for address in endpoint["addresses"] for number in numbers]
            table[(cluster_ip, port["port"])] = sorted(backends)
    return table


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


class ServiceProxy:
    def __init__(self, bridge: str, service_subnet: ipaddress.IPv4Network) -> None:
        self.bridge = bridge
        self.subnet = service_subnet
        self.backends: dict[Address, list[Address]] = {}
        self.servers: dict[Address, asyncio.Server] = {}
        self.addresses = self._bridge_addresses()  # a previous kubelet's, adopted
        self._turn = itertools.count()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="service-proxy", daemon=True)
        self._thread.start()

    def _bridge_addresses(self) -> set[str]:
        words = ip("-o", "-4", "addr", "show", "dev", self.bridge).stdout.split()
        found = {word.split("/")[0] for word in words if "/" in word}
        return {address for address in found if ipaddress.IPv4Address(address) in self.subnet}

    def update(self, table: dict[Address, list[Address]]) -> None:
        self.backends = table
        wanted_ips = {address for address, _ in table}
        for address in sorted(wanted_ips - self.addresses):
            ip("addr", "add", f"{address}/32", "dev", self.bridge, check=False)
            self.addresses.add(address)
        for frontend in sorted(set(table) - set(self.servers)):
            start = asyncio.start_server(
                functools.partial(self._connect, frontend), *frontend, reuse_address=True
            )
            try:
                self.servers[frontend] = asyncio.run_coroutine_threadsafe(start, self.loop).result(5)
            except OSError as error:
                log.warning("service proxy cannot listen on %s:%d: %s", *frontend, error)
        for frontend in set(self.servers) - set(table):
            self.loop.call_soon_threadsafe(self.servers.pop(frontend).close)
        for address in self.addresses - wanted_ips:
            ip("addr", "del", f"{address}/32", "dev", self.bridge, check=False)
        self.addresses &= wanted_ips

    async def _connect(
        self, frontend: Address, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        backends = self.backends.get(frontend, [])
        first = next(self._turn)
        for attempt in range(len(backends)):
            host, port = backends[(first + attempt) % len(backends)]
            try:
                opened = asyncio.open_connection(host, port)
                backend_reader, backend_writer = await asyncio.wait_for(opened, CONNECT_TIMEOUT)
            except (OSError, TimeoutError):
                continue
            try:
                await asyncio.gather(_pipe(reader, backend_writer), _pipe(backend_reader, writer))
            finally:
                backend_writer.close()
                writer.close()
            return
        writer.close()  # no endpoint: the client sees the connection closed, as with kube-proxy's reject

    def close(self) -> None:
        for server in self.servers.values():
            self.loop.call_soon_threadsafe(server.close)
        self.servers.clear()
        self.loop.call_soon_threadsafe(self.loop.stop)
