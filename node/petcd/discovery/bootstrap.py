"""Where a new member's initial cluster comes from: --initial-cluster, a discovery URL, or DNS SRV.

The server calls `initial_members` once, when it starts with no data, and passes the result to
`Config.verify_bootstrap`. Member IDs derive from `Config.bootstrap_token` (the discovery URL when
discovering); the discovery registration needs this member's ID, so the server passes it in.
"""

from __future__ import annotations

import asyncio
from typing import Any

from petcd.config import Config, ConfigError, format_initial_cluster, parse_initial_cluster
from petcd.discovery import srv, v2url

Members = dict[str, tuple[str, ...]]


async def initial_members(config: Config, member_id: int, *, nameserver: str | None = None,
                          **discovery_options: Any) -> Members:
    """The member map to bootstrap from (etcd's PeerURLsMapAndToken, then JoinCluster on discovery).

    Raises DiscoveryError with etcd's messages when discovery fails, ConfigError on duplicate URLs.
    """
    if config.discovery:
        own = format_initial_cluster(config.bootstrap_members())
        text = await v2url.join_cluster(config.discovery, member_id, own, **discovery_options)
        members = parse_initial_cluster(text)
        if _has_duplicate_url(members):
            raise ConfigError(f"discovery cluster {format_initial_cluster(members)} has duplicate url")
        return members
    if config.discovery_srv:
        text = await asyncio.to_thread(
            srv.srv_initial_cluster, config.name, config.discovery_srv, config.discovery_srv_name,
            config.initial_advertise_peer_urls, nameserver)
        return parse_initial_cluster(text)
    return config.bootstrap_members()


def _has_duplicate_url(members: Members) -> bool:
    urls = [url for member_urls in members.values() for url in member_urls]
    return len(urls) != len(set(urls))
