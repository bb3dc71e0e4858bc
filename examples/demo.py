"""`make demo`: a durable agent job that survives a crash and waits for a human.

1. Starts the research job (examples/research_job.py) on the embedded SQLite store.
2. Runs a worker process and SIGKILLs it partway through the job.
3. Starts a fresh worker: finished model calls come back from the journal, not the provider.
4. The job pauses for a human review of its publish_brief tool call; this script answers it
   through the CLI (`duragent approve ...`), saying so.
5. Prints the result and the cost ledger.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from duragent.agents.usage import ledger_from_operations  # noqa: E402
from duragent.durable import LocalRuntime  # noqa: E402
from duragent.ops import LocalOperator, cost_split, invocations  # noqa: E402

WORK = ROOT / ".duragent" / "demo"
DB = WORK / "demo.db"
TARGET = f"{ROOT / 'examples' / 'research_job.py'}:research_job"


def say(text: str) -> None:
    print(f"\033[1m==>\033[0m {text}", flush=True)


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "duragent", "--db", str(DB), *args]
    print(f"    $ duragent {' '.join(args)}", flush=True)
    return subprocess.run(command, cwd=ROOT, env=_env(), text=True, capture_output=True, check=check)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "DURAGENT_BRIEFS_DIR": str(WORK / "briefs")}


def start_worker() -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "duragent", "--db", str(DB), "worker"], cwd=ROOT,
                            env=_env(), text=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Progress:
    """Prints each finished model and tool call once, as the store records it."""

    def __init__(self, runtime: LocalRuntime, execution_id: str) -> None:
        self.runtime = runtime
        self.execution_id = execution_id
        self.seen: set[str] = set()

    def poll(self) -> list[Any]:
        ops = self.runtime.operations(self.execution_id)
        by_id = {op.Id: op for op in ops}
        for op in ops:
            if op.Id in self.seen or op.Status.value != "SUCCEEDED" or op.Type.value != "STEP":
                continue
            self.seen.add(op.Id)
            if op.SubType == "ModelCall" or (op.Name or "").startswith("tool:"):
                print(f"    ✓ {_where(op, by_id)}{op.Name}", flush=True)
        return ops


def _where(op: Any, by_id: dict[str, Any]) -> str:
    """The map item an operation belongs to, if any ("research: durable execution › ")."""
    parent = by_id.get(op.ParentId or "")
    while parent is not None:
        if (parent.Name or "").startswith("research: "):
            return f"{parent.Name} › "
        parent = by_id.get(parent.ParentId or "")
    return ""


def model_calls(ops: list[Any]) -> int:
    return sum(1 for op in ops if op.SubType == "ModelCall" and op.Status.value == "SUCCEEDED")


def main() -> int:
    real = os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("OPENAI_API_KEY")
    if real:
        say("Using the real provider (an API key is set).")
    else:
        say("No ANTHROPIC_API_KEY or OPENAI_API_KEY: running on the built-in scripted model (offline, "
            "~0.4 s per call to feel like inference).")
    shutil.rmtree(WORK, ignore_errors=True)
    for private in (WORK.parent, WORK):  # the store's directories are private, as LocalRuntime makes them
        private.mkdir(mode=0o700, exist_ok=True)
        private.chmod(0o700)
    runtime = LocalRuntime(DB)
    sys.path.insert(0, str(ROOT / "examples"))
    execution_id = runtime.start("research_job", {"topics": ["durable execution", "human in the loop",
                                                             "llm cost control"]},
                                 execution_id="demo-research", target=TARGET)
    say(f"Started execution {execution_id} in {DB.relative_to(ROOT)}")
    progress = Progress(runtime, execution_id)

    say("Worker 1 runs the job; it will be killed (SIGKILL) after a few model calls.")
    worker = start_worker()
    deadline = time.time() + 120
    while model_calls(progress.poll()) < 3 and time.time() < deadline and worker.poll() is None:
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    ops = progress.poll()
    done_before = model_calls(ops)
    saved = ledger_from_operations(ops)
    say(f"Killed worker 1 (pid {worker.pid}) with {done_before} model calls finished.")

    say("Worker 2 resumes the job from the journal.")
    worker = start_worker()
    try:
        review = _wait_for_review(runtime, progress, execution_id)
        if review is not None:
            args = review.get("arguments") or {}
            say(f"The job is waiting for a human: {review['title']} (arguments: title={args.get('title')!r}, "
                f"body of {len(str(args.get('body', '')))} characters). Nothing runs while it waits.")
            say("Answering the review through the CLI, as a person would from another terminal:")
            answer = cli("approve", review["callback_id"], "--reviewer", "demo")
            print("    " + answer.stdout.strip().replace("\n", "\n    "))
        info = _wait_for_end(runtime, progress, execution_id)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)

    ops = runtime.operations(execution_id)
    total = model_calls(ops)
    ledger = ledger_from_operations(ops)
    lost = (f"; {ledger.lost_calls} {'was' if ledger.lost_calls == 1 else 'were'} in flight when the worker died "
            "(paid, the answer lost, sent again)" if ledger.lost_calls else "")
    say(f"Execution {info.status}. {total} model calls answered, each paid once; {done_before} were reused after "
        f"the crash (${saved.paid_cost:.4f} not paid twice){lost}.")
    print(json.dumps(info.result, indent=2, ensure_ascii=False))
    say("Cost ledger (`duragent show` prints it too):")
    operator = LocalOperator(runtime)
    split = cost_split(ops, invocations(operator.history(execution_id), ops))
    print(split.format() if split is not None else "no model calls")
    script = Path(sys.executable).parent / "duragent"
    command = os.path.relpath(script, Path.cwd()) if script.exists() else "duragent"
    say(f"Explore it: {command} --db {os.path.relpath(DB, Path.cwd())} show {execution_id}    "
        f"(or: history {execution_id}, list)")
    return 0 if info.status == "SUCCEEDED" else 1


def _wait_for_review(runtime: LocalRuntime, progress: Progress, execution_id: str) -> dict[str, Any] | None:
    deadline = time.time() + 180
    while time.time() < deadline:
        progress.poll()
        if runtime.get(execution_id).status != "RUNNING":
            return None
        pending = json.loads(cli("list", "--pending", "--json").stdout)["pending"] if _has_pending(runtime) else []
        for item in pending:
            if item["execution_id"] == execution_id:
                return item
        time.sleep(0.2)
    raise SystemExit("the job did not reach its review within 3 minutes")


def _has_pending(runtime: LocalRuntime) -> bool:
    return bool(runtime.pending_callbacks())


def _wait_for_end(runtime: LocalRuntime, progress: Progress, execution_id: str) -> Any:
    deadline = time.time() + 180
    while time.time() < deadline:
        progress.poll()
        info = runtime.get(execution_id)
        if info.status != "RUNNING":
            return info
        time.sleep(0.1)
    raise SystemExit("the job did not finish within 3 minutes")


if __name__ == "__main__":
    sys.exit(main())
