"""The local web console: an HTTP server on 127.0.0.1 over one duragent store.

It reads the store and answers what waits for a person; it never runs executions (a worker does).

Authentication is a bearer token, never a cookie (cookies ignore ports, so any other local web
server would receive one): ``duragent ui`` prints ``http://127.0.0.1:PORT/#token=...``; the page
takes the token from the URL fragment (which browsers never send to a server), keeps it in the
tab's sessionStorage (scoped to this origin, port included), removes it from the address bar, and
sends ``Authorization: Bearer <token>`` with every API call. The page shell and its static files
hold no data and need no token; every ``/api/`` path does. A request whose Host is not this
server's own address is refused (DNS rebinding), a POST from another origin too.

JSON API (errors are ``{"error": "..."}`` with 400 bad input, 401 no token, 403 cross-origin or
foreign Host, 404 unknown id or path, 405, 409 answered meanwhile, 411/413 body length)::

    GET  /api/executions[?status=RUNNING&limit=100&cursor=N]   {"executions", "total", "next_cursor"}
    GET  /api/executions/{id}                                  execution, timeline, invocations,
                                                               conversation, ledger, reviews
    GET  /api/executions/{id}/history                          {"events": [...]}
    GET  /api/executions/{id}/events[?after=CURSOR]            text/event-stream: the execution's events as
                                                               they happen (``id:`` the cursor of a durable
                                                               one; resume with Last-Event-ID), then ``end``
    POST /api/executions/{id}/messages        {"text": "..."} or {"end": true}   (a chat session's next message)
    GET  /api/reviews[?limit=100&cursor=N]                     {"reviews", "total", "next_cursor"}
    GET  /api/reviews/{callback_id}                            one pending callback, by id
    POST /api/reviews/{callback_id}/approve   {"edits"?: {...}, "reviewer"?: "..."}
    POST /api/reviews/{callback_id}/reject    {"feedback": "...", "reviewer"?: "..."}
    POST /api/reviews/{callback_id}/answer    {"answer": <JSON>}   (a question or a plain callback)
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
import signal
import sqlite3
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from types import FrameType
from typing import Any, TextIO
from urllib.parse import parse_qsl, unquote, urlsplit

from duragent.durable.errors import CallbackNotFoundError, DurableError, ExecutionNotFoundError
from duragent.ops import LocalOperator, values
from duragent.ops.values import InputError

from . import views

log = logging.getLogger("duragent.console")

HOST = "127.0.0.1"
DEFAULT_PORT = 8321
MAX_BODY = 1_000_000
HEARTBEAT_SECONDS = 15.0
PAGES = {"": "executions", "reviews": "reviews", "executions": "execution"}
STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class ApiError(Exception):
    """A request the console refuses: the status and a message for the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def to_json(value: Any) -> bytes:
    """JSON whose text never contains ``<``, ``>`` or ``&`` (escaped as \\u003c...), so it is inert
    even if a browser were tricked into reading it as HTML."""
    text = json.dumps(value, ensure_ascii=False, default=str, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode("utf-8",
                                                                                                "backslashreplace")


def _static(name: str) -> bytes:
    return (resources.files(__package__) / "static" / name).read_bytes()


class ConsoleServer:
    """The console over one store, on ``port`` (0: a free one). ``start()`` serves in a background
    thread (tests); ``serve_forever()`` serves in the caller's thread (``duragent ui``)."""

    def __init__(self, operator: LocalOperator, *, port: int = 0, host: str = HOST,
                 token: str | None = None, reviewer: str = "console") -> None:
        self.operator = operator
        self.token = token or secrets.token_urlsafe(32)
        self.reviewer = reviewer
        self.httpd = _HTTPServer((host, port), _Handler)
        self.httpd.console = self
        self.assets = {name: _static(name) for name in (*STATIC, "index.html")}
        self._thread: threading.Thread | None = None
        self.closing = threading.Event()
        """Set on close: open event streams end within a second."""

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def url(self) -> str:
        """The address to open: the token rides in the fragment, which browsers never send."""
        return f"{self.base_url}/#token={self.token}"

    @property
    def hosts(self) -> set[str]:
        return {f"{HOST}:{self.port}", f"localhost:{self.port}"}

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> ConsoleServer:
        self._thread = threading.Thread(target=self.serve_forever, name="duragent-console", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.closing.set()
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> ConsoleServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def authorized(self, handler: BaseHTTPRequestHandler) -> bool:
        auth = handler.headers.get("Authorization", "")
        if not auth.lower().startswith("bearer "):
            return False
        given = auth[7:].strip().encode("utf-8", "surrogateescape")
        return hmac.compare_digest(given, self.token.encode())


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    console: ConsoleServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("console: connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """One request: check, route, answer. Nothing a client sends can take the server down."""

    server: _HTTPServer
    server_version = "duragent-console"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 30

    # -- plumbing ----------------------------------------------------------------------------------
    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("console: " + format, *args)

    @property
    def console(self) -> ConsoleServer:
        return self.server.console

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in _SECURITY_HEADERS.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, value: Any) -> None:
        self._send(status, to_json(value), "application/json; charset=utf-8")

    def _dispatch(self, method: str) -> None:
        try:
            self._route(method)
        except ApiError as exc:
            self._fail(exc.status, exc.message)
        except ExecutionNotFoundError as exc:
            self._fail(HTTPStatus.NOT_FOUND, str(exc))
        except CallbackNotFoundError as exc:
            self._fail(HTTPStatus.CONFLICT if "already" in str(exc) or "which is" in str(exc)
                       else HTTPStatus.NOT_FOUND, str(exc))
        except DurableError as exc:  # InputError, ReviewError and the rest of the UsageError family
            self._fail(HTTPStatus.BAD_REQUEST, str(exc))
        except sqlite3.Error as exc:
            log.warning("console: store error: %s", exc)
            self._fail(HTTPStatus.SERVICE_UNAVAILABLE, f"the store is unavailable ({exc}); try again")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # a bug must cost one request, never the server
            log.exception("console: internal error on %s %s", method, self.path)
            self._fail(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error; see the console's log")

    def _fail(self, status: int, message: str) -> None:
        self.close_connection = True  # a refused request may have left its body unread
        message = " ".join(message.split())
        try:
            self._send_json(status, {"error": message})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    # -- routing ---------------------------------------------------------------------------------
    def _route(self, method: str) -> None:
        if self.headers.get("Host", "") not in self.console.hosts:
            raise ApiError(HTTPStatus.FORBIDDEN, "this console answers only to its own address; open the URL "
                                                 "that `duragent ui` printed")
        if any(ord(char) > 126 or ord(char) < 33 for char in self.path):
            raise ApiError(HTTPStatus.BAD_REQUEST, "the request path must be printable ASCII (percent-encode "
                                                   "the rest as UTF-8)")
        parts = urlsplit(self.path)
        try:
            segments = [unquote(s, errors="strict") for s in parts.path.split("/")[1:]]
            query = parse_qsl(parts.query, keep_blank_values=True, errors="strict")
        except UnicodeDecodeError:
            raise ApiError(HTTPStatus.BAD_REQUEST, "the request path is not valid UTF-8 once decoded; "
                                                   "percent-encode text as UTF-8") from None
        if segments and segments[0] == "api":
            if not self.console.authorized(self):
                raise ApiError(HTTPStatus.UNAUTHORIZED, "missing or wrong token; open the URL that `duragent ui` "
                                                        "printed (it carries the token after #token=)")
            self._api(method, segments[1:], query)
            return
        if method != "GET":
            raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed here")
        self._page(segments, query)

    def _page(self, segments: list[str], query: list[tuple[str, str]]) -> None:
        """The page shell and its static files: no data in them, so no token needed."""
        if len(segments) == 2 and segments[0] == "static" and segments[1] in STATIC:
            self._send(HTTPStatus.OK, self.console.assets[segments[1]], STATIC[segments[1]])
            return
        if segments == ["favicon.ico"]:
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            return
        known = segments in ([], [""], ["reviews"]) or (len(segments) == 2 and segments[0] == "executions")
        if not known:
            raise ApiError(HTTPStatus.NOT_FOUND, "no such page; the console has /, /reviews and /executions/ID")
        self._send(HTTPStatus.OK, self.console.assets["index.html"], "text/html; charset=utf-8")

    def _api(self, method: str, segments: list[str], query: list[tuple[str, str]]) -> None:
        operator = self.console.operator
        if method == "GET":
            if segments == ["executions"]:
                params = _params(query, {"status", "limit", "cursor"})
                listing = operator.list_executions(status=params.get("status"), limit=params.get("limit", "100"),
                                                   cursor=params.get("cursor"))
                self._send_json(HTTPStatus.OK, listing.to_dict("executions"))
                return
            if len(segments) == 2 and segments[0] == "executions":
                _params(query, set())
                execution_id = _execution_id(segments[1])
                self._send_json(HTTPStatus.OK, views.execution_detail(operator, execution_id, time.time()))
                return
            if len(segments) == 3 and segments[0] == "executions" and segments[2] == "events":
                self._events(_execution_id(segments[1]), _params(query, {"after"}))
                return
            if len(segments) == 3 and segments[0] == "executions" and segments[2] == "history":
                _params(query, set())
                self._send_json(HTTPStatus.OK, {"events": operator.history(_execution_id(segments[1]))})
                return
            if segments == ["reviews"]:
                params = _params(query, {"limit", "cursor"})
                pending = operator.pending(limit=params.get("limit", "100"), cursor=params.get("cursor"))
                self._send_json(HTTPStatus.OK, pending.to_dict("reviews", views.pending_item))
                return
            if len(segments) == 2 and segments[0] == "reviews":
                _params(query, set())
                self._send_json(HTTPStatus.OK, views.pending_item(operator.pending_callback(_callback_id(segments[1]))))
                return
        elif method == "POST" and len(segments) == 3 and segments[0] == "executions" and segments[2] == "messages":
            _params(query, set())
            self._message(_execution_id(segments[1]))
            return
        elif method == "POST" and len(segments) == 3 and segments[0] == "reviews":
            _params(query, set())
            self._answer(segments[1], segments[2])
            return
        if segments in (["executions"], ["reviews"]) or (len(segments) in (2, 3) and
                                                         segments[0] in ("executions", "reviews")):
            raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed on this path")
        raise ApiError(HTTPStatus.NOT_FOUND, "no such API path; see GET /api/executions and /api/reviews")

    # -- following -------------------------------------------------------------------------------
    def _events(self, execution_id: str, params: dict[str, str]) -> None:
        """Server-sent events: each event as ``event: TYPE`` and ``data: JSON``, a durable one with
        ``id: CURSOR`` (a browser that reconnects sends it back as Last-Event-ID and gets the rest,
        each once); comments keep the connection alive; ``event: end`` once the execution ended."""
        after = values.page_offset(params.get("after") or self.headers.get("Last-Event-ID") or "0", "after")
        stream = self.console.operator.events(execution_id, after=after)  # an unknown id is a 404 here
        self.close_connection = True
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Connection", "close")
        for name, value in _SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        quiet = 0.0
        try:
            with stream:
                self.wfile.write(b": following\n\n")
                self.wfile.flush()
                while not self.console.closing.is_set():
                    try:
                        event = stream.get(1.0)
                    except StopIteration:
                        self.wfile.write(b"event: end\ndata: {}\n\n")
                        break
                    if event is None:
                        quiet += 1.0
                        if quiet >= HEARTBEAT_SECONDS:  # a closed connection is noticed on this write
                            self.wfile.write(b": still here\n\n")
                            self.wfile.flush()
                            quiet = 0.0
                        continue
                    quiet = 0.0
                    head = f"id: {event.cursor}\n" if event.cursor is not None else ""
                    self.wfile.write(f"{head}event: {event.type}\n".encode() + b"data: " +
                                     to_json(event.to_dict()) + b"\n\n")
                    self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the page went away
        except Exception:  # the store closed under us (the console is stopping): end the stream
            log.debug("console: event stream of %s ended", execution_id, exc_info=True)

    def _message(self, execution_id: str) -> None:
        from duragent.agents.session import SessionError

        body = self._body()
        _fields(body, {"text", "end"})
        end = body.get("end", False)
        if not isinstance(end, bool) or (not end and not isinstance(body.get("text"), str)):
            raise InputError('send {"text": "your message"}, or {"end": true} to end the session')
        try:
            callback = self.console.operator.send_message(execution_id, body.get("text"), end=end)
        except SessionError as exc:
            raise ApiError(HTTPStatus.CONFLICT, exc.message) from None
        self._send_json(HTTPStatus.OK, {"execution_id": execution_id, "callback_id": callback, "ended": end})

    # -- answering -------------------------------------------------------------------------------
    def _body(self) -> dict[str, Any]:
        """The request's JSON object. Only JSON from this origin is accepted."""
        origin = self.headers.get("Origin")
        if origin and urlsplit(origin).netloc not in self.console.hosts:
            raise ApiError(HTTPStatus.FORBIDDEN, "cross-origin requests are refused")
        if self.headers.get("Content-Type", "").split(";")[0].strip().lower() != "application/json":
            raise ApiError(HTTPStatus.BAD_REQUEST, "send the body as JSON with Content-Type: application/json")
        text = self.headers.get("Content-Length", "")
        if not text.isdigit() or len(text) > 12:
            raise ApiError(HTTPStatus.LENGTH_REQUIRED, "a Content-Length header with the body's size is required")
        length = int(text)
        if length > MAX_BODY:
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body must be at most {MAX_BODY} bytes")
        raw = self.rfile.read(length)
        if not raw.strip():
            return {}
        return values.json_object(values.decode_utf8(raw, "the body"), "the body", '{"feedback": "why"}')

    def _answer(self, callback_id: str, action: str) -> None:
        if action not in ("approve", "reject", "answer"):
            raise ApiError(HTTPStatus.NOT_FOUND, f"unknown action {action[:40]!r}; use approve, reject or answer")
        body = self._body()  # read the body first: a keep-alive connection must not keep it unread
        operator = self.console.operator
        callback_id = _callback_id(callback_id)
        if action == "answer":
            _fields(body, {"answer"}, required={"answer"})
            done = operator.answer(callback_id, body["answer"])
        elif action == "approve":
            _fields(body, {"edits", "reviewer"})
            edits = body.get("edits")
            if edits is not None and not isinstance(edits, dict):
                raise InputError('"edits" must be a JSON object naming the arguments to change, e.g. {"amount": 10}')
            done = operator.approve(callback_id, edits=edits, reviewer=self._reviewer(body))
        else:
            _fields(body, {"feedback", "reviewer"}, required={"feedback"})
            if not isinstance(body["feedback"], str):
                raise InputError('"feedback" must be text saying why (the model reads it)')
            done = operator.reject(callback_id, body["feedback"], reviewer=self._reviewer(body))
        self._send_json(HTTPStatus.OK, done.to_dict())

    def _reviewer(self, body: dict[str, Any]) -> str:
        reviewer = body.get("reviewer")
        if reviewer is not None and not isinstance(reviewer, str):
            raise InputError('"reviewer" must be text (a name)')
        return reviewer if isinstance(reviewer, str) and reviewer.strip() else self.console.reviewer


def _params(query: list[tuple[str, str]], allowed: set[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in query:
        if key not in allowed:
            raise InputError(f"unknown query parameter {key[:40]!r}; this path takes "
                             f"{', '.join(sorted(allowed)) or 'none'}")
        if key in found:
            raise InputError(f"query parameter {key!r} is given twice; give it once")
        found[key] = value
    return found


def _fields(body: dict[str, Any], allowed: set[str], *, required: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InputError(f"unknown field {unknown[0][:40]!r} in the body; this action takes "
                         f"{', '.join(sorted(allowed))}")
    missing = sorted(required - set(body))
    if missing:
        raise InputError(f"the body needs {missing[0]!r}; send e.g. " +
                         ('{"feedback": "not before Monday"}' if "feedback" in missing else '{"answer": "yes"}'))


def _execution_id(text: str) -> str:
    try:
        return values.execution_id(text)
    except InputError as exc:
        raise ApiError(HTTPStatus.NOT_FOUND, f"no execution: {exc}") from None


def _callback_id(text: str) -> str:
    try:
        return values.callback_id(text)
    except InputError as exc:
        raise ApiError(HTTPStatus.NOT_FOUND, f"no pending callback with that id: {exc}") from None


def serve(operator: LocalOperator, *, port: int = DEFAULT_PORT, out: TextIO | None = None) -> int:
    """Serve the console until Ctrl-C; print the URL to open (token included) first."""
    console = ConsoleServer(operator, port=port)
    stream = out or sys.stdout
    print(f"duragent console: {console.url}", file=stream, flush=True)
    print("serving until Ctrl-C; executions run in `duragent worker`, not here", file=sys.stderr, flush=True)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
    try:
        console.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        console.httpd.server_close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
