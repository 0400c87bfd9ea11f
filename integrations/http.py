"""The POST of a webhook, guarded against server-side request forgery.

The host is resolved here and every address it resolves to must be public (not private, loopback, link-local,
shared, reserved or multicast) unless WEBHOOK_ALLOW_PRIVATE is on. The connection then goes to the address that
was checked, never to a second resolution: a DNS answer that changes between the check and the connect (DNS
rebinding) cannot point a delivery at the inside. HTTPS still verifies the certificate against the host name
(SNI). Redirects are not followed. Every socket operation has WEBHOOK_TIMEOUT_S; at most EXCERPT_BYTES of the
answer are read."""
import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

EXCERPT_BYTES = 2048


class AddressRefused(Exception):
    """The URL is not one a webhook may call (scheme, or an address that is not public)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: str


@dataclass(frozen=True)
class Answer:
    status: int
    excerpt: str


def public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(url: str, *, allow_private: bool | None = None) -> Target:
    """Where a POST to `url` would go; AddressRefused if it may not, OSError if the name does not resolve."""
    if allow_private is None:
        allow_private = settings.WEBHOOK_ALLOW_PRIVATE
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AddressRefused(_("A webhook URL starts with http:// or https:// and names a host."))
    if parts.username or parts.password:
        raise AddressRefused(_("A webhook URL carries no user name or password."))
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise AddressRefused(_("The URL's port is not valid.")) from None
    addresses = list(dict.fromkeys(info[4][0] for info in socket.getaddrinfo(parts.hostname, port,
                                                                             type=socket.SOCK_STREAM)))
    if not allow_private:
        for address in addresses:
            if not public_address(address):
                raise AddressRefused(_("%(host)s resolves to %(address)s, a private, loopback or link-local address "
                                       "(WEBHOOK_ALLOW_PRIVATE=1 allows it).") % {"host": parts.hostname,
                                                                                  "address": address})
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, path, addresses[0])


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self.address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self.address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float | None = None) -> Answer:
    """POST `body` to `url` (checked and pinned as above). Raises AddressRefused, OSError (timeouts included) or
    http.client.HTTPException."""
    target = resolve(url)
    timeout = settings.WEBHOOK_TIMEOUT_S if timeout is None else timeout
    connection = (_PinnedHTTPS if target.scheme == "https" else _PinnedHTTP)(target, timeout)
    try:
        connection.request("POST", target.path, body=body, headers={
            "Content-Type": "application/json", "User-Agent": "Livechat-Webhooks/1", **headers})
        response = connection.getresponse()
        excerpt = response.read(EXCERPT_BYTES).decode("utf-8", "replace")
        return Answer(response.status, excerpt)
    finally:
        connection.close()
