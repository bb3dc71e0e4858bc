"""The local web console: a token-guarded HTTP server on 127.0.0.1 over one duragent store.

It reads the store and answers human reviews; it never runs executions (a worker does). Every
request needs the token printed at start: ``?token=`` on the first page load (which sets a
cookie), the cookie afterwards, or ``Authorization: Bearer <token>`` for the JSON API.

JSON API (errors are ``{"error": "..."}``: 400 bad input, 401 no token, 403 cross-origin, 404 unknown
id or path, 405, 409 answered meanwhile, 411/413 body length)::

    GET  /api/executions[?status=RUNNING&limit=100]   {"executions": [...]}
    GET  /api/executions/{id}                         execution, operations, timeline, conversation,
                                                      ledger, ledger_text, reviews
    GET  /api/executions/{id}/history                 {"events": [...]}
    GET  /api/reviews                                 {"reviews": [...]}
    POST /api/reviews/{callback_id}/approve           {"edits"?: {...}, "reviewer"?: "..."}  (partial edit)
    POST /api/reviews/{callback_id}/reject            {"feedback": "...", "reviewer"?: "..."}
    POST /api/reviews/{callback_id}/answer            {"answer": <JSON>}  (a question or plain callback)
"""

from __future__ import annotations

import hmac
import html
import json
import logging
import re
import secrets
import signal
import sqlite3
import sys
import threading
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import CallbackNotFoundError, DurableError, ExecutionNotFoundError
from ..local.runtime import LocalRuntime
from ..model import ExecutionStatus
from . import assets, views

log = logging.getLogger("duragent.durable.console")

HOST = "127.0.0.1"
DEFAULT_PORT = 8321
MAX_BODY = 1_000_000
MAX_LIMIT = 1000
_EXECUTION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CALLBACK_ID = re.compile(r"[A-Za-z0-9+/=_.:-]{1,2048}")
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
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


class ConsoleServer:
    """The console over one runtime, on ``port`` (0: a free one). ``start()`` serves in a background
    thread (tests); ``serve_forever()`` serves in the caller's thread (``duragent ui``)."""

    def __init__(self, runtime: LocalRuntime, *, port: int = 0, host: str = HOST,
                 token: str | None = None, reviewer: str = "console") -> None:
        self.runtime = runtime
        self.token = token or secrets.token_urlsafe(32)
        self.reviewer = reviewer
        self.httpd = _HTTPServer((host, port), _Handler)
        self.httpd.console = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def url(self) -> str:
        """The address to open, token included."""
        return f"{self.base_url}/?token={self.token}"

    @property
    def cookie_name(self) -> str:
        return f"duragent_console_{self.port}"  # cookies ignore ports: one name per console

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> ConsoleServer:
        self._thread = threading.Thread(target=self.serve_forever, name="duragent-console", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> ConsoleServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def authorized(self, handler: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> tuple[bool, bool]:
        """(token accepted, it came in the query string) for one request."""
        candidates: list[tuple[str, bool]] = [(value, True) for value in query.get("token", [])]
        auth = handler.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            candidates.append((auth[7:].strip(), False))
        try:
            cookie = SimpleCookie(handler.headers.get("Cookie", ""))
        except CookieError:
            cookie = SimpleCookie()
        if self.cookie_name in cookie:
            candidates.append((cookie[self.cookie_name].value, False))
        for value, from_query in candidates:
            if hmac.compare_digest(value.encode(), self.token.encode()):
                return True, from_query
        return False, False


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    console: ConsoleServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("console: connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """One request: authenticate, route, answer. Nothing a client sends can take the server down."""

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

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**_SECURITY_HEADERS, **(headers or {})}.items():
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
            self._fail(HTTPStatus.CONFLICT, str(exc))
        except DurableError as exc:
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
        try:
            if self.path.startswith("/api/"):
                self._send_json(status, {"error": message})
            else:
                page = f"<!doctype html><meta charset='utf-8'><title>duragent</title><p>{html.escape(message)}</p>"
                self._send(status, page.encode(), "text/html; charset=utf-8")
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
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        ok, from_query = self.console.authorized(self, query)
        if not ok:
            raise ApiError(HTTPStatus.UNAUTHORIZED, "missing or wrong token; open the URL that `duragent ui` "
                                                    "printed (it includes ?token=...)")
        segments = [unquote(s) for s in parts.path.split("/")[1:]]
        if segments and segments[0] == "api":
            self._api(method, segments[1:], query)
            return
        if method != "GET":
            raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed here")
        self._page(segments, set_cookie=from_query)

    def _page(self, segments: list[str], *, set_cookie: bool) -> None:
        if segments == ["static", "app.js"]:
            self._send(HTTPStatus.OK, assets.APP_JS.encode(), "text/javascript; charset=utf-8")
            return
        if segments == ["static", "app.css"]:
            self._send(HTTPStatus.OK, assets.APP_CSS.encode(), "text/css; charset=utf-8")
            return
        if segments == ["favicon.ico"]:
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            return
        status, page, title = HTTPStatus.OK, "", "executions"
        if segments in ([""], []):
            page = "executions"
        elif segments == ["reviews"]:
            page, title = "reviews", "inbox"
        elif len(segments) == 2 and segments[0] == "executions":
            page = "execution"
            try:
                info = self.console.runtime.get(self._execution_id(segments[1]))
                title = info.name or info.id
            except (ApiError, ExecutionNotFoundError):
                status, title = HTTPStatus.NOT_FOUND, "not found"
        else:
            raise ApiError(HTTPStatus.NOT_FOUND, "no such page")
        headers = {}
        if set_cookie:
            headers["Set-Cookie"] = (f"{self.console.cookie_name}={self.console.token}; Path=/; HttpOnly; "
                                     "SameSite=Strict")
        body = assets.page(page, title)
        self._send(status, body.encode(), "text/html; charset=utf-8", headers)

    def _api(self, method: str, segments: list[str], query: dict[str, list[str]]) -> None:
        runtime = self.console.runtime
        if method == "GET":
            if segments == ["executions"]:
                status = self._status_filter(query)
                rows = runtime.list(status=status, limit=self._limit(query))
                self._send_json(HTTPStatus.OK, {"executions": rows})
                return
            if len(segments) == 2 and segments[0] == "executions":
                self._send_json(HTTPStatus.OK, views.execution_detail(runtime, self._execution_id(segments[1])))
                return
            if len(segments) == 3 and segments[0] == "executions" and segments[2] == "history":
                self._send_json(HTTPStatus.OK, {"events": runtime.history(self._execution_id(segments[1]))})
                return
            if segments == ["reviews"]:
                self._send_json(HTTPStatus.OK, {"reviews": views.reviews(runtime)})
                return
        elif method == "POST" and len(segments) == 3 and segments[0] == "reviews":
            self._answer(segments[1], segments[2])
            return
        if self._known_api_path(segments):
            raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed on this path")
        raise ApiError(HTTPStatus.NOT_FOUND, "no such API path; see GET /api/executions and /api/reviews")

    @staticmethod
    def _known_api_path(segments: list[str]) -> bool:
        return (segments in (["executions"], ["reviews"])
                or (len(segments) in (2, 3) and segments[0] in ("executions", "reviews")))

    # -- inputs ----------------------------------------------------------------------------------
    @staticmethod
    def _execution_id(text: str) -> str:
        if not _EXECUTION_ID.fullmatch(text):
            raise ApiError(HTTPStatus.NOT_FOUND, f"no execution {text[:80]!r}; ids are 1-64 characters "
                                                 "from A-Z a-z 0-9 - _")
        return text

    @staticmethod
    def _status_filter(query: dict[str, list[str]]) -> str | None:
        value = (query.get("status") or [""])[-1].strip().upper()
        if not value:
            return None
        if value not in ExecutionStatus.__members__:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"unknown status {value[:40]!r}; use one of "
                                                   f"{', '.join(ExecutionStatus)}")
        return value

    @staticmethod
    def _limit(query: dict[str, list[str]]) -> int:
        text = (query.get("limit") or ["100"])[-1]
        try:
            limit = int(text)
        except ValueError:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"limit must be a whole number from 1 to {MAX_LIMIT}") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"limit must be a whole number from 1 to {MAX_LIMIT}")
        return limit

    def _body(self) -> dict[str, Any]:
        """The request's JSON object. Only JSON is accepted, which also keeps cross-site forms out."""
        origin = self.headers.get("Origin")
        if origin and urlsplit(origin).netloc != self.headers.get("Host", ""):
            raise ApiError(HTTPStatus.FORBIDDEN, "cross-origin requests are refused")
        if self.headers.get("Content-Type", "").split(";")[0].strip().lower() != "application/json":
            raise ApiError(HTTPStatus.BAD_REQUEST, "send the body as JSON with Content-Type: application/json")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise ApiError(HTTPStatus.LENGTH_REQUIRED, "a Content-Length header is required") from None
        if length < 0:
            raise ApiError(HTTPStatus.BAD_REQUEST, "Content-Length must not be negative")
        if length > MAX_BODY:
            self.close_connection = True
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body must be at most {MAX_BODY} bytes")
        raw = self.rfile.read(length)
        try:
            data = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"the body is not JSON ({exc}); send a JSON object") from None
        if not isinstance(data, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
        return data

    # -- answering reviews -------------------------------------------------------------------------
    def _answer(self, callback_id: str, action: str) -> None:
        if action not in ("approve", "reject", "answer"):
            raise ApiError(HTTPStatus.NOT_FOUND, f"unknown action {action[:40]!r}; use approve, reject or answer")
        body = self._body()  # read the body first: a keep-alive connection must not keep it unread
        if not _CALLBACK_ID.fullmatch(callback_id):
            raise ApiError(HTTPStatus.NOT_FOUND, "no pending review with that callback id")
        runtime = self.console.runtime
        review = next((r for r in views.reviews(runtime) if r["callback_id"] == callback_id), None)
        if review is None:
            raise ApiError(HTTPStatus.NOT_FOUND, "no pending review with that callback id; it was answered, "
                                                 "timed out, or its execution ended")
        text = self._decision(action, review.get("request"), body)
        execution_id = runtime.send_callback_success(callback_id, text)
        self._send_json(HTTPStatus.OK, {"ok": True, "execution_id": execution_id, "answer": json.loads(text)})

    def _decision(self, action: str, record: Any, body: dict[str, Any]) -> str:
        """The answer's JSON text, checked by the review protocol (agents.review) before anything is sent."""
        from duragent.agents.review import (
            Answer,
            Approve,
            Decision,
            Reject,
            ReviewError,
            encode_decision,
            review_request,
        )

        reviewer = body.get("reviewer")
        if reviewer is not None and (not isinstance(reviewer, str) or len(reviewer) > 200):
            raise ApiError(HTTPStatus.BAD_REQUEST, "reviewer must be a string of at most 200 characters")
        request = review_request(record)
        if action == "answer" and "answer" not in body:
            raise ApiError(HTTPStatus.BAD_REQUEST, 'send {"answer": <the answer as JSON>}')
        if request is None:  # a plain callback: its answer is whatever JSON the code waiting for it reads
            if action != "answer":
                raise ApiError(HTTPStatus.BAD_REQUEST, f"a callback is answered with POST .../answer, not {action}")
            return json.dumps(body["answer"])
        reviewer = reviewer.strip() if isinstance(reviewer, str) and reviewer.strip() else self.console.reviewer
        decision: Decision
        if action == "answer":
            decision = Answer(value=body["answer"])
        elif action == "approve":
            edits = body.get("edits", body.get("arguments"))
            if edits is not None and not isinstance(edits, dict):
                raise ApiError(HTTPStatus.BAD_REQUEST, "edits must be a JSON object of the arguments to change, "
                                                       'e.g. {"to": "ops@example.com"}')
            decision = Approve(edits=edits, reviewer=reviewer)
        else:
            feedback = body.get("feedback")
            if not isinstance(feedback, str):
                raise ApiError(HTTPStatus.BAD_REQUEST, "a rejection needs feedback: a non-empty string "
                                                       "the model reads")
            decision = Reject(feedback=feedback, reviewer=reviewer)
        try:
            return encode_decision(request, decision)
        except ReviewError as exc:
            raise ApiError(HTTPStatus.BAD_REQUEST, str(exc)) from None


def serve(runtime: LocalRuntime, *, port: int = DEFAULT_PORT, out: TextIO | None = None) -> int:
    """Serve the console until Ctrl-C; print the URL to open (token included) first."""
    console = ConsoleServer(runtime, port=port)
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
