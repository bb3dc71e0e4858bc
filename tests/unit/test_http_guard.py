"""Issue 9, hole 6: ``http_get`` fetches only from global addresses, and connects to the address it
checked (a second lookup could answer differently: DNS rebinding).

Name resolution is simulated in-process (``socket.getaddrinfo`` answers for made-up ``.test``
names), and every connection is recorded: the only ones allowed through go to the loopback test
servers. No request ever leaves the machine.
"""

from __future__ import annotations

import http.server
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from duragent.tools import ToolError
from duragent.tools.builtin import http_get
from duragent.tools.builtin.http import ALLOW_PRIVATE_ENV

REAL_GETADDRINFO = socket.getaddrinfo
REAL_CREATE_CONNECTION = socket.create_connection


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        _Recorder.seen.append({"path": self.path, "host": self.headers.get("Host")})
        body = b"from loopback"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def loopback() -> Iterator[int]:
    _Recorder.seen = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, list[str]], list[int]]:
    """``dns(name, answers)``: lookups of ``name`` return ``answers`` one after the other (the last
    one repeats); returns the list counting the lookups made. Other names resolve as usual."""
    zones: dict[str, tuple[list[str], list[int]]] = {}

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host in zones:
            answers, calls = zones[host]
            address = answers[min(len(calls), len(answers) - 1)]
            calls.append(1)
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sockaddr = (address, int(port or 0), 0, 0) if family == socket.AF_INET6 else (address, int(port or 0))
            return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def add(name: str, answers: list[str]) -> list[int]:
        zones[name] = (answers, [])
        return zones[name][1]

    return add


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every TCP connection opened; anything but loopback is refused before a packet is sent."""
    made: list[Any] = []

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        made.append(address)
        host = address[0]
        if host not in ("127.0.0.1", "::1", "localhost") and not str(host).endswith(".test"):
            raise ConnectionRefusedError(f"test: no traffic to {host}")
        return REAL_CREATE_CONNECTION(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return made


NON_GLOBAL = ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
              "100.100.100.200", "0.0.0.0", "192.0.2.1", "198.18.0.1", "224.0.0.1", "255.255.255.255", "::1",
              "fe80::1", "fc00::1", "::ffff:127.0.0.1", "2002:7f00:1::", "2002:a9fe:a9fe::1", "2002:0a00:0001::1",
              "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "2001:0:4136:e378:8000:63bf:80ff:fffe", "ff02::1"]


@pytest.mark.parametrize("address", NON_GLOBAL)
def test_every_non_global_address_is_refused(dns: Any, connections: list[Any], monkeypatch: pytest.MonkeyPatch,
                                             address: str) -> None:
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    dns("inside.test", [address])
    with pytest.raises(ToolError, match="non-public address"):
        http_get("http://inside.test/latest/meta-data/")
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(ToolError, match="non-public address"):
        http_get(f"http://{literal}/")
    assert connections == []  # refused before any connection


def test_a_name_with_one_private_address_among_public_ones_is_refused(dns: Any, connections: list[Any],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))])
    with pytest.raises(ToolError, match=r"non-public address \(127.0.0.1"):
        http_get("http://mixed.test/")
    assert connections == []


def test_dns_rebinding_cannot_reach_loopback(dns: Any, connections: list[Any], loopback: int,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The name is public when checked and loopback when looked up again: the connection goes to
    the checked address (recorded and refused here), never to the second answer."""
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    lookups = dns("rebind.test", ["93.184.216.34", "127.0.0.1"])
    with pytest.raises(ToolError, match="could not fetch"):
        http_get(f"http://rebind.test:{loopback}/secret")
    assert _Recorder.seen == []  # the loopback server was never reached
    assert connections == [("93.184.216.34", loopback)]
    assert len(lookups) == 1


def test_the_connection_goes_to_the_checked_address_and_keeps_the_name(dns: Any, connections: list[Any],
                                                                       loopback: int,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")  # the test server is on loopback
    lookups = dns("pinned.test", ["127.0.0.1", "127.0.0.2"])
    page = http_get(f"http://pinned.test:{loopback}/page")
    assert page["status"] == 200 and page["text"] == "from loopback"
    assert connections == [("127.0.0.1", loopback)] and len(lookups) == 1
    assert _Recorder.seen == [{"path": "/page", "host": f"pinned.test:{loopback}"}]


def test_redirects_are_resolved_and_checked_again(dns: Any, connections: list[Any], loopback: int,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)

    class Redirect(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            self.send_response(302)
            self.send_header("Location", f"http://inside.test:{loopback}/secret")
            self.send_header("Content-Length", "0")
            self.end_headers()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        # a "public" first host (its connection is let through to the loopback redirector) that
        # redirects to a name that resolves to loopback
        dns("public.test", ["93.184.216.34"])
        dns("inside.test", ["127.0.0.1"])
        monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: (
            connections.append(address) or REAL_CREATE_CONNECTION(("127.0.0.1", httpd.server_address[1]), *a, **k)))
        with pytest.raises(ToolError, match="'inside.test' resolves to a non-public address"):
            http_get(f"http://public.test:{httpd.server_address[1]}/")
        assert _Recorder.seen == []
        assert connections == [("93.184.216.34", httpd.server_address[1])]
    finally:
        httpd.shutdown()
        httpd.server_close()


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"],
                   check=True, capture_output=True)
    return cert, key


def test_https_connects_to_the_checked_address_with_the_name_as_sni_and_for_the_certificate(
        tmp_path: Path, dns: Any, connections: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = _self_signed(tmp_path, "secure.test")
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the default context trusts our test certificate
    server_names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)  # type: ignore[assignment,misc,func-returns-value]
    _Recorder.seen = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    try:
        lookups = dns("secure.test", ["127.0.0.1", "127.0.0.2"])
        page = http_get(f"https://secure.test:{port}/tls")
        assert page["status"] == 200 and page["text"] == "from loopback"
        assert connections == [("127.0.0.1", port)] and len(lookups) == 1
        assert server_names == ["secure.test"]
        assert _Recorder.seen == [{"path": "/tls", "host": f"secure.test:{port}"}]
        dns("wrong.test", ["127.0.0.1"])  # the certificate is checked against the name asked for
        with pytest.raises(ToolError, match="could not fetch.*(certificate|hostname)"):
            http_get(f"https://wrong.test:{port}/tls")
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_proxy_settings_do_not_bypass_the_check(dns: Any, connections: list[Any], loopback: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{loopback}")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{loopback}")
    dns("inside.test", ["10.0.0.5"])
    with pytest.raises(ToolError, match="non-public address"):
        http_get("http://inside.test/")
    assert _Recorder.seen == [] and connections == []
