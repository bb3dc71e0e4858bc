"""AWS's durable execution emulator (``dex-local-runner start-server``) plus a Lambda Invoke
endpoint of our own, so our Lambda entry point runs end to end with no AWS account
(PROTOCOL.md §6).

The emulator runs as a subprocess on 127.0.0.1. It never runs code itself: for every invocation
it calls Lambda ``Invoke`` on ``--lambda-endpoint``, which is ``InvokeEndpoint`` here, a
threaded HTTP server in the test process answering ``POST /2015-03-31/functions/{name}/invocations``
by calling ``lambda_handler(fn)(event, None)``. Our handler's boto3 client finds the emulator
through the standard ``AWS_ENDPOINT_URL_LAMBDA``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

REGION = "us-west-2"
ACCOUNT = "123456789012"
DUMMY_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_SESSION_TOKEN": "test",
             "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED"}

LambdaFunction = Callable[[Any, Any], Any]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class InvokeEndpoint:
    """A stand-in for ``sam local start-lambda``: Lambda Invoke for functions registered here."""

    def __init__(self) -> None:
        self.functions: dict[str, LambdaFunction] = {}
        self.invocations: list[tuple[str, dict[str, Any]]] = []
        self.outputs: list[tuple[str, Any]] = []
        """(execution ARN, what the function returned) per invocation, in order."""
        self.errors: list[str] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                parts = urlparse(self.path).path.strip("/").split("/")
                if len(parts) != 4 or parts[1] != "functions" or parts[3] != "invocations":
                    self._reply(404, {"message": f"no route {self.path}"})
                    return
                name = unquote(parts[2]).split(":")[0]
                fn = endpoint.functions.get(name)
                if fn is None:
                    self._reply(404, {"Type": "User", "message": f"Function not found: {name}"},
                                {"x-amzn-ErrorType": "ResourceNotFoundException"})
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                event = json.loads(body or b"{}")
                endpoint.invocations.append((name, event))
                try:
                    result = fn(event, None)
                except Exception as exc:  # a function error: Lambda reports it, the emulator retries
                    endpoint.errors.append("".join(traceback.format_exception(exc)))
                    self._reply(200, {"errorMessage": str(exc), "errorType": type(exc).__name__},
                                {"X-Amz-Function-Error": "Unhandled"})
                    return
                endpoint.outputs.append((str(event.get("DurableExecutionArn")), result))
                self._reply(200, result)

            def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="invoke-endpoint")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def register(self, name: str, fn: LambdaFunction) -> str:
        self.functions[name] = fn
        return name

    def outputs_of(self, arn: str) -> list[Any]:
        """What the function returned to each invocation of one execution."""
        return [output for output_arn, output in list(self.outputs) if output_arn == arn]

    def events_of(self, arn: str) -> list[dict[str, Any]]:
        """The invocation events one execution's function received."""
        return [event for _, event in list(self.invocations) if event.get("DurableExecutionArn") == arn]


def runner_command() -> list[str]:
    """``dex-local-runner`` from the same environment as this interpreter."""
    local = Path(sys.executable).with_name("dex-local-runner")
    if local.exists():
        return [str(local)]
    found = shutil.which("dex-local-runner")
    if found is None:
        raise RuntimeError("dex-local-runner not found: pip install aws-durable-execution-sdk-python-testing "
                           "(it is in duragent's dev extra)")
    return [found]


class Emulator:
    """The emulator process plus the invoke endpoint; ``lambda_client`` talks to the emulator."""

    def __init__(self, *, skip_time: bool = False, log_path: Path | None = None,
                 function_configs: dict[str, Any] | None = None) -> None:
        self.skip_time = skip_time
        self.function_configs = function_configs
        self.endpoint = InvokeEndpoint()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._client: Any = None

    def start(self, timeout: float = 30.0) -> None:
        self.endpoint.start()
        command = [*runner_command(), "start-server", "--host", "127.0.0.1", "--port", str(self.port),
                   "--lambda-endpoint", self.endpoint.url, "--local-runner-endpoint", self.url,
                   "--local-runner-region", REGION, "--log-level", "WARNING",
                   "--skip-time" if self.skip_time else "--no-skip-time"]
        if self.function_configs:
            command += ["--function-configs", json.dumps(self.function_configs)]
        env = {**os.environ, **DUMMY_ENV}
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dex-local-runner exited with {self.process.returncode}: "
                                   f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"dex-local-runner did not answer /health within {timeout} s: {self.log_tail()}")

    def log_tail(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-3000:]
        return "(no log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.endpoint.stop()

    @property
    def lambda_client(self) -> Any:
        """A boto3 ``lambda`` client on the emulator (what a human's tools would use)."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client("lambda", endpoint_url=self.url, region_name=REGION,
                                        aws_access_key_id="test", aws_secret_access_key="test",
                                        config=Config(retries={"mode": "standard", "max_attempts": 5},
                                                      read_timeout=30, max_pool_connections=50))
        return self._client

    # -- executions --------------------------------------------------------------------------
    def start_execution(self, function: str, input: Any = None, *, name: str | None = None,
                        timeout_seconds: int = 300) -> str:
        """``POST /start-durable-execution`` (what ``dex-local-runner invoke`` sends)."""
        body = {"AccountId": ACCOUNT, "FunctionName": function, "FunctionQualifier": "$LATEST",
                "ExecutionName": name or f"{function}-{uuid.uuid4().hex[:8]}",
                "ExecutionTimeoutSeconds": timeout_seconds, "ExecutionRetentionPeriodDays": 1,
                "InvocationId": str(uuid.uuid4()), "Input": json.dumps(input)}
        request = urllib.request.Request(f"{self.url}/start-durable-execution", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        for attempt in range(5):  # the emulator's listen backlog is small: retry a refused connection
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return str(json.loads(response.read())["ExecutionArn"])
            except (ConnectionError, urllib.error.URLError) as exc:
                if isinstance(exc, urllib.error.HTTPError) or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def execution(self, arn: str) -> dict[str, Any]:
        return dict(self.lambda_client.get_durable_execution(DurableExecutionArn=arn))

    def wait(self, arn: str, *, timeout: float = 60.0, until: Callable[[dict[str, Any]], bool] | None = None
             ) -> dict[str, Any]:
        """Poll GetDurableExecution until the execution ends (or ``until(execution)`` holds)."""
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            execution = self.execution(arn)
            if (until(execution) if until else execution["Status"] in TERMINAL):
                return execution
            if time.monotonic() > deadline:
                raise AssertionError(f"execution {arn} still {execution['Status']} after {timeout} s; "
                                     f"handler errors: {self.endpoint.errors[-1:]}\n{self.log_tail()}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def history(self, arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        marker: str | None = None
        while True:
            request: dict[str, Any] = {"DurableExecutionArn": arn, "IncludeExecutionData": True, "MaxItems": 1000}
            if marker:
                request["Marker"] = marker
            page = self.lambda_client.get_durable_execution_history(**request)
            events.extend(page.get("Events", []))
            marker = page.get("NextMarker")
            if not marker:
                return events

    def run(self, function: str, input: Any = None, *, timeout: float = 60.0) -> tuple[str, dict[str, Any]]:
        arn = self.start_execution(function, input)
        return arn, self.wait(arn, timeout=timeout)


@contextmanager
def dummy_aws_env(**extra: str) -> Iterator[None]:
    """Dummy credentials and region (the emulator does not check SigV4) plus ``extra``."""
    saved = {key: os.environ.get(key) for key in [*DUMMY_ENV, *extra]}
    os.environ.update({**DUMMY_ENV, **extra})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
