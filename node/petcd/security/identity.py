"""What a verified client certificate says about its holder."""

from __future__ import annotations

from typing import Any

# ssl's getpeercert() dictionary: {"subject": ((("commonName", "alice"),), ...), "subjectAltName": ...}
PeerCert = dict[str, Any]


def common_name(cert: PeerCert | None) -> str:
    """The subject's CN ("" when there is no certificate or no CN): the user name with
    --client-cert-auth, as etcd's AuthInfoFromTLS takes it."""
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


def peer_allowed(cert: PeerCert | None, allowed_cn: str, allowed_hostname: str) -> bool:
    """--peer-cert-allowed-cn / --peer-cert-allowed-hostname: an empty setting allows any peer."""
    if allowed_cn and common_name(cert) != allowed_cn:
        return False
    if allowed_hostname:
        names = [v for k, v in (cert or {}).get("subjectAltName", ()) if k in ("DNS", "IP Address")]
        return allowed_hostname in names
    return True
