"""Who is calling: the client's address, believing X-Forwarded-For only from trusted proxies.

`SOLARIS_TRUSTED_PROXIES` lists the reverse proxies (addresses or networks) in front of Solaris.
A request that reaches Solaris from one of them names its client in X-Forwarded-For, each proxy
appending the address it received the request from; the client is the right-most address that is
not a trusted proxy. From anywhere else the header is the caller's own text and is ignored.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Throttles key IPv6 callers by their /64: one subscriber line holds the whole /64.
IPV6_PREFIX = 64


def networks_parse(values: list[str] | tuple[str, ...], *, setting: str) -> tuple[IPNetwork, ...]:
    """Addresses and networks (`10.0.0.0/8`, `::1`) of a setting; a clear error for a bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{setting}: {value!r} is not an IP address or network.") from None
    return tuple(networks)


@lru_cache(maxsize=8)
def _networks(values: tuple[str, ...], setting: str) -> tuple[IPNetwork, ...]:
    return networks_parse(values, setting=setting)


def address_in(address: str, *, setting: str) -> bool:
    """Whether `address` is in the networks the list setting `setting` names."""
    parsed = _parse(address)
    if parsed is None:
        return False
    return any(
        parsed in network for network in _networks(tuple(getattr(settings, setting)), setting)
    )


def _parse(value: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket is the IPv4 client.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, or the X-Forwarded-For hop the trusted proxies name."""
    remote = _parse(request.META.get("REMOTE_ADDR") or "")
    if remote is None:
        return ""
    trusted = _networks(tuple(settings.SOLARIS_TRUSTED_PROXIES), "SOLARIS_TRUSTED_PROXIES")
    address = remote
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    while any(address in network for network in trusted) and hops:
        hop = _parse(hops.pop())
        if hop is None:
            # A proxy we trust wrote something that is no address: keep that proxy's address.
            break
        address = hop
    return str(address)


def client_key(request) -> str:
    """The client's address as throttles count it: IPv4 as is, IPv6 by its /64 network."""
    address = _parse(client_ip(request))
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/{IPV6_PREFIX}", strict=False))
    return str(address or "")
