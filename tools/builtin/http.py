"""``http_get``: fetch a web page for a model, with a size limit enforced while reading, an
overall deadline, only http/https (redirects included), and only from public addresses: each host
is resolved once, every address it has must be global, and the connection goes to the address that
was checked (a second lookup could be answered differently: DNS rebinding)."""

from __future__ import annotations

import http.client
import ipaddress
import os
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from typing import Annotated, Any

from pydantic import Field

from ..errors import ToolError
from ..tool import tool

DEFAULT_MAX_BYTES = 100_000
MAX_BYTES_LIMIT = 500_000
"""The largest ``max_bytes`` a model may ask for (a step result is limited to 1 MiB)."""
DEFAULT_TIMEOUT_S = 15.0
USER_AGENT = "duragent-http-get/0.1"
_CHUNK = 16_384
_TEXTUAL = ("text/", "application/json", "application/xml", "application/xhtml", "application/javascript",
            "application/ld+json", "application/rss", "application/atom", "+json", "+xml")


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http/https only (urllib alone would also follow ftp). The host of each
    redirect is resolved and checked again when its connection opens."""

    def http_error_302(self, req: Any, fp: Any, code: int, msg: str, headers: Any) -> Any:
        location = headers.get("location") or headers.get("uri")
        if location:
            _check_scheme(urllib.parse.urljoin(req.full_url, location))
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


ALLOW_PRIVATE_ENV = "DURAGENT_HTTP_GET_ALLOW_PRIVATE"
"""Set to 1 to let http_get reach loopback, private, link-local and other non-global addresses
(off by default: a model must not be able to probe the machine's own network or a cloud metadata
endpoint)."""


def _check_scheme(url: str) -> None:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme.lower() not in ("http", "https"):
        raise ToolError(f"only http and https URLs can be fetched, not {parsed.scheme or 'a relative URL'!r} "
                        f"({url[:200]})")
    if not parsed.hostname:
        raise ToolError(f"the URL has no host: {url[:200]}")


def non_global_reason(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why ``ip`` is not an address on the public internet, or None when it is. IPv6 forms that
    carry an IPv4 address (mapped, 6to4, Teredo, NAT64) are judged by that address too."""
    if not ip.is_global:
        return "not a global address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        for inner in embedded:
            if inner is not None and non_global_reason(inner):
                return f"it carries the IPv4 address {inner}"
    return None


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def resolve_public(host: str, port: int) -> str:
    """The one address ``host`` is fetched from: resolved once, and refused unless every address
    the name has is global (``is_global``), unless private addresses are allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise ToolError(f"cannot resolve {host!r}: {exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))
    if not addresses:
        raise ToolError(f"cannot resolve {host!r}: no address")
    if os.environ.get(ALLOW_PRIVATE_ENV) != "1":
        for address in addresses:
            reason = non_global_reason(ipaddress.ip_address(address))
            if reason:
                raise ToolError(f"{host!r} resolves to a non-public address ({address}: {reason}); http_get "
                                f"only fetches public URLs (set {ALLOW_PRIVATE_ENV}=1 to allow private ones)")
    return addresses[0]


def _connect(address: tuple[str, int], timeout: float | None) -> socket.socket:
    """Open the TCP connection to the address that was checked (never to a name)."""
    return socket.create_connection(address, timeout)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address ``resolve_public`` checked, not to a second resolution of the name
    (which DNS rebinding could point at loopback), while the Host header keeps the name."""

    def connect(self) -> None:
        self.sock = _connect((resolve_public(self.host, self.port), self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """The same for TLS: the certificate is checked against the name, which is also sent as SNI."""

    def connect(self) -> None:
        sock = _connect((resolve_public(self.host, self.port), self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


class _PinnedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: Any) -> Any:
        return self.do_open(_PinnedHTTPConnection, req)


class _PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: Any) -> Any:
        return self.do_open(_PinnedHTTPSConnection, req, context=ssl.create_default_context())


def fetch(url: str, *, max_bytes: int = DEFAULT_MAX_BYTES, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """GET ``url``; read at most ``max_bytes`` of the body within ``timeout_s`` seconds overall.

    Returns ``url`` (after redirects), ``status``, ``content_type``, ``text`` (decoded, possibly
    truncated), ``truncated`` and ``bytes_read``. HTTP error statuses are returned, not raised.
    Proxy settings (``HTTP_PROXY``...) are not used: a proxy would resolve the name itself, past
    the address check.
    """
    _check_scheme(url)
    deadline = time.monotonic() + timeout_s
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _PinnedHTTPHandler(),
                                         _PinnedHTTPSHandler(), _HttpOnlyRedirects())
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
    try:
        try:
            response = opener.open(request, timeout=timeout_s)
        except urllib.error.HTTPError as exc:  # 4xx/5xx still have a body worth showing
            response = exc
        with response:
            status = response.status if hasattr(response, "status") else response.code
            headers: Message = response.headers
            body, truncated = _read(response, max_bytes, deadline, timeout_s)
            final_url = response.geturl()
    except ToolError:
        raise
    except TimeoutError:
        raise ToolError(f"timed out after {timeout_s:g} s fetching {url[:200]}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ToolError):
            raise exc.reason from None
        if isinstance(exc.reason, TimeoutError):
            raise ToolError(f"timed out after {timeout_s:g} s fetching {url[:200]}") from None
        raise ToolError(f"could not fetch {url[:200]}: {exc.reason}") from None
    except (OSError, ValueError) as exc:
        raise ToolError(f"could not fetch {url[:200]}: {exc}") from None
    content_type = headers.get_content_type() if headers.get("Content-Type") else ""
    if _is_textual(content_type) or not content_type:
        text = body.decode(headers.get_content_charset() or "utf-8", errors="replace")
    else:
        text = f"[{len(body)} bytes of {content_type} not shown]"
    return {"url": final_url, "status": status, "content_type": headers.get("Content-Type", ""),
            "text": text, "truncated": truncated, "bytes_read": len(body)}


def _read(response: Any, max_bytes: int, deadline: float, timeout_s: float) -> tuple[bytes, bool]:
    """Read up to ``max_bytes`` in chunks, checking the overall deadline between chunks."""
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:
        if time.monotonic() > deadline:
            raise TimeoutError(f"deadline of {timeout_s} s passed while reading")
        chunk = response.read1(min(_CHUNK, max_bytes + 1 - size)) if hasattr(response, "read1") else \
            response.read(min(_CHUNK, max_bytes + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    body = b"".join(chunks)
    return body[:max_bytes], len(body) > max_bytes


def _is_textual(content_type: str) -> bool:
    return any(content_type.startswith(t) or content_type.endswith(t) for t in _TEXTUAL)


@tool
def http_get(url: str,
             max_bytes: Annotated[int, Field(ge=1, le=MAX_BYTES_LIMIT)] = DEFAULT_MAX_BYTES,
             timeout_s: Annotated[float, Field(gt=0, le=60)] = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """Fetch a URL with HTTP GET and return its status, content type and text.

    The body is cut at max_bytes ("truncated": true says it was); binary content is not shown.

    Args:
        url: an absolute http:// or https:// URL.
        max_bytes: read at most this many bytes of the body.
        timeout_s: give up after this many seconds.
    """
    return fetch(url, max_bytes=max_bytes, timeout_s=timeout_s)
