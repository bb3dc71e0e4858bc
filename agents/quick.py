"""Quick runs: an agent run outside any durable function, for trying things out in a REPL, a
notebook or a script (``agent.run_sync("...")``, ``agent.run(None, "...")``).

The run goes through the same loop as always, on a throwaway in-memory store that disappears when
it returns: nothing is recorded and nothing survives a crash. A review by a person cannot be
answered from here; such a run stops with AgentError naming what it waits for.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from duragent.durable import LocalRuntime

from .messages import Message

if TYPE_CHECKING:
    from .agent import Agent, AgentResult

MAX_WAIT_SECONDS = 300.0
"""The longest a quick run sleeps through one durable retry delay (a provider's Retry-After)."""


def run_sync(agent: Agent, prompt: str | None, *, history: Sequence[Message | Mapping[str, Any]] | None = None,
             on_text: Any = None) -> AgentResult:
    """Run ``agent`` to its answer here and now, on a throwaway in-memory store."""
    from .agent import AgentError

    holder: dict[str, Any] = {}

    def quick_run(event: Any, ctx: Any) -> Any:
        try:
            result = agent.run(ctx, prompt, history=history, on_text=on_text)
        except Exception as exc:
            holder["error"] = exc
            raise
        holder["result"] = result
        return None

    with LocalRuntime(":memory:") as runtime:
        execution_id = runtime.start(quick_run, None, name=f"quick run of {agent.name}")
        stop = threading.Event()
        while True:
            runtime.run_until_idle()
            info = runtime.get(execution_id)
            if info.status != "RUNNING":
                break
            pending = runtime.pending_callbacks()
            if pending:
                names = ", ".join(sorted({op.Name or "a callback" for _, op, _ in pending}))
                raise AgentError(f"{agent.name} waits for a person ({names}); a quick run cannot be answered. Run "
                                 "it in a durable function (agent.run(ctx, ...)) and answer with `duragent approve`")
            due = runtime.service.next_due()
            if due is None:
                raise AgentError(f"{agent.name} suspended with nothing to wait for (status {info.status})")
            runtime.clock.sleep(min(MAX_WAIT_SECONDS, max(0.0, due - runtime.clock.now())), stop)
    if "error" in holder and "result" not in holder:
        raise holder["error"]
    if "result" not in holder:
        raise AgentError(f"quick run of {agent.name} ended {info.status}: {(info.error or {}).get('ErrorMessage')}")
    result: AgentResult = holder["result"]
    return result


def quick_run(agent: Agent, prompt: str | None, *, history: Sequence[Message | Mapping[str, Any]] | None = None,
              on_text: Any = None) -> Any:
    """``agent.run(None, ...)``: the result now, or, called on a running event loop, an awaitable
    of it (the run then happens in a worker thread, so the loop is never blocked)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run_sync(agent, prompt, history=history, on_text=on_text)
    return asyncio.to_thread(run_sync, agent, prompt, history=history, on_text=on_text)


__all__ = ["quick_run", "run_sync"]
