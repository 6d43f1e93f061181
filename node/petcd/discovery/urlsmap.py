"""etcd's URLsMap: `name=url[,name=url...]` strings as used by --initial-cluster and discovery."""

from __future__ import annotations

from urllib.parse import urlsplit


class URLsMapError(ValueError):
    pass


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "unix", "unixs"):
        raise URLsMapError(f"URL scheme must be http, https, unix, or unixs: {url}")
    if parts.scheme in ("http", "https") and (not parts.hostname or parts.port is None):
        raise URLsMapError(f'URL address does not have the form "host:port": {url}')
    if parts.path not in ("", "/"):
        raise URLsMapError(f"URL must not contain a path: {url}")


def parse_urls_map(text: str) -> dict[str, list[str]]:
    """Parse `name=url,...` (a name may repeat for several URLs), checking each URL as etcd does."""
    out: dict[str, list[str]] = {}
    for item in text.split(","):
        if not item:
            continue
        name, sep, url = item.partition("=")
        if not sep:
            raise URLsMapError(f"invalid initial cluster entry {item!r}: want name=url")
        _check_url(url)
        out.setdefault(name, []).append(url)
    for urls in out.values():
        urls.sort()
    return out


def format_urls_map(urls_map: dict[str, list[str]]) -> str:
    """etcd's URLsMap.String(): names sorted, then each name's URLs sorted."""
    return ",".join(f"{name}={url}" for name in sorted(urls_map) for url in sorted(urls_map[name]))
