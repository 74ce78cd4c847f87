"""Webhook URL validation against server-side request forgery (SSRF).

Organisations configure webhook URLs for risk alerts, so the platform would otherwise make
requests to any address a tenant types — including the cloud metadata service
(169.254.169.254), the database or Redis on the private network, or the web process itself.
`validate_webhook_url` accepts only http(s) URLs without credentials whose host resolves
exclusively to public unicast addresses; every resolved address is checked (one bad record is
enough to refuse, since the client may pick any of them) and returned so that the sender can
connect to exactly those addresses and not resolve the name again (which would let a hostile
DNS server answer differently the second time). `validate_redirect` applies the same rules to
each redirect hop. The resolver is injectable so tests never touch the network.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

Resolver = Callable[[str, int], Sequence[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORTS = {"https": 443, "http": 80}
MAX_REDIRECTS = 5

# Prefixes that embed an IPv4 address in an IPv6 one and so could smuggle a private target.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


class UnsafeURLError(ValueError):
    """The URL may not be called; the message says why (safe to show to the user)."""


@dataclass(frozen=True, slots=True)
class ValidatedURL:
    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]  # connect to these, do not resolve `host` again


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, via the operating system (getaddrinfo)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def address_problem(address: str | IPAddress) -> str:
    """Why a request to this IP address is refused, or "" if it is a public unicast address."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return f"{address} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return f"{ip} is a scoped (interface-local) address"
        embedded = ip.ipv4_mapped
        kind = "an IPv4-mapped"
        if embedded is None and ip.sixtofour is not None:
            embedded, kind = ip.sixtofour, "a 6to4"
        if embedded is None and ip.teredo is not None:
            embedded, kind = ip.teredo[1], "a Teredo"
        if embedded is None and (ip in _NAT64 or ip in _NAT64_LOCAL):
            embedded, kind = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "a NAT64"
        if embedded is not None:
            inner = address_problem(embedded)
            if inner:
                return f"{ip} is {kind} form of a refused address ({inner})"
            # Even around a public IPv4 address these forms have no business in a webhook
            # and are handled inconsistently by resolvers and proxies.
            return f"{ip} is {kind} address, which is refused"
    for test, what in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_reserved", "a reserved address"),  # before private, which includes 240.0.0.0/4
        ("is_private", "a private address"),
    ):
        if getattr(ip, test):
            return f"{ip} is {what}"
    if not ip.is_global:
        # e.g. carrier-grade NAT (100.64.0.0/10), which Python counts as neither
        # private nor global.
        return f"{ip} is not a public address"
    return ""


def validate_webhook_url(
    url: str,
    *,
    resolver: Resolver | None = None,
    allow_http: bool = True,
) -> ValidatedURL:
    """Check a webhook URL and resolve its host; raise `UnsafeURLError` if it may not be called."""
    if not isinstance(url, str) or not url.strip():
        raise UnsafeURLError("the URL is empty")
    if len(url) > 2048:
        raise UnsafeURLError("the URL is longer than 2048 characters")
    if any(c in url for c in "\r\n\t\x00 "):
        raise UnsafeURLError("the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURLError(f"the URL is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if allow_http else ("https",)
    if scheme not in allowed:
        raise UnsafeURLError(
            f"the URL scheme must be {' or '.join(allowed)}, not {scheme or 'empty'!r}"
        )
    if parts.username is not None or parts.password is not None:
        raise UnsafeURLError("the URL must not contain credentials")
    host = parts.hostname
    if not host:
        raise UnsafeURLError("the URL has no host")
    port = port if port is not None else DEFAULT_PORTS[scheme]
    if port == 0:
        raise UnsafeURLError("port 0 is not a valid destination")

    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise UnsafeURLError(f"the host name {host!r} is not valid") from None
        try:
            addresses = list((resolver or system_resolver)(ascii_host, port))
        except (OSError, UnicodeError) as exc:
            raise UnsafeURLError(f"the host {host} could not be resolved ({exc})") from None
        if not addresses:
            raise UnsafeURLError(f"the host {host} did not resolve to any address")
        host = ascii_host
    for address in addresses:
        problem = address_problem(address)
        if problem:
            where = "" if literal is not None else f"{host} resolves to "
            raise UnsafeURLError(f"refused: {where}{problem}")
    return ValidatedURL(url, scheme, host, port, tuple(addresses))


def validate_redirect(
    current: ValidatedURL | str,
    location: str,
    *,
    hops: int,
    resolver: Resolver | None = None,
    allow_http: bool = True,
    max_redirects: int = MAX_REDIRECTS,
) -> ValidatedURL:
    """Validate the target of a redirect before following it.

    `hops` is how many redirects have already been followed from the original URL. A
    relative `Location` is resolved against the current URL; a redirect from https to
    http is refused (it would send the alert in clear text).
    """
    if hops >= max_redirects:
        raise UnsafeURLError(f"too many redirects (more than {max_redirects})")
    base = current.url if isinstance(current, ValidatedURL) else current
    target = urljoin(base, location.strip())
    if urlsplit(base).scheme.lower() == "https" and urlsplit(target).scheme.lower() == "http":
        raise UnsafeURLError("refused: a redirect from https to http")
    return validate_webhook_url(target, resolver=resolver, allow_http=allow_http)
