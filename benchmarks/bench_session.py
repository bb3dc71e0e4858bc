"""8. Sessions: a 200-turn durable chat session (agents.conversation), one message per turn, each
answered and then suspended until the next one arrives, as a chat with a person is.

Store bytes per turn: the store's size (pages in use, WAL included) after every turn; growth over
40-turn windows at the start, middle and end of the conversation (turns 1-40, 81-120, 160-199),
and the bytes of the rows each turn writes (operations + history events). The conversation the
model is sent grows with every turn; what the journal keeps per turn must not.

Time per turn (info): a turn is a fresh invocation that replays the conversation from the journal
(each earlier turn is one checkpointed record, read back without running anything) and makes one
model call (a scripted model: no network), so it grows with the number of turns; shown around
turns 10, 100 and 200.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from duragent.agents import Agent, Session, conversation
from duragent.agents.messages import ModelRequest, ModelResponse, TextBlock, Usage
from duragent.agents.models import FunctionModel
from duragent.durable import LocalRuntime

from ._common import TARGET_SESSION_FLATNESS, Result, main, median

TURNS = 200
REPLY = ("Thanks, noted. Here is what I understood from your message, and what I will do next; "
         "tell me if anything is off. ")


def answer(request: ModelRequest) -> ModelResponse:
    turn = sum(1 for m in request.messages if m.role == "assistant") + 1
    text = f"{REPLY}(turn {turn:04d})"
    size = sum(len(b.text) for m in request.messages for b in m.content if isinstance(b, TextBlock))
    return ModelResponse(content=[TextBlock(text=text)], stop_reason="end_turn", model="scripted:chat",
                         usage=Usage(input_tokens=size // 4, output_tokens=len(text) // 4))


def message(turn: int) -> str:
    return f"Message {turn:04d}: please keep track of item {turn * 7 % 1000:03d} for me, it matters."


def size(db: Path, conn: sqlite3.Connection) -> int:
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * conn.execute("PRAGMA page_size").fetchone()[0])


def row_bytes(conn: sqlite3.Connection, execution_id: str) -> int:
    stored = conn.execute("SELECT COALESCE(SUM(LENGTH(data) + COALESCE(LENGTH(x), 0)), 0) FROM journal "
                          "WHERE (k >> 32) = (SELECT num FROM executions WHERE id = ?)", (execution_id,)).fetchone()[0]
    return int(stored)


def run_session(db: Path) -> tuple[list[int], list[int], list[float], int]:
    """(store size after each turn, row bytes after each turn, seconds per turn, last request's chars)."""
    model = FunctionModel(answer, name="chat")
    chat = conversation(Agent(model, name="chat", system="You keep track of things."), name="bench_chat",
                        compaction=None)
    sizes: list[int] = []
    rows: list[int] = []
    seconds: list[float] = []
    with LocalRuntime(db, durability="process") as rt:
        session = Session.start(rt, chat)
        rt.run_until_idle()
        reader = sqlite3.connect(str(db))
        try:
            for turn in range(1, TURNS + 1):
                t0 = time.perf_counter()
                session.send(message(turn), timeout=30)
                rt.run_until_idle()
                seconds.append(time.perf_counter() - t0)
                sizes.append(size(db, reader))
                rows.append(row_bytes(reader, session.id))
        finally:
            reader.close()
        turns = session.turns()
    if len(turns) != TURNS or turns[-1].reply != f"{REPLY}(turn {TURNS:04d})":
        raise RuntimeError(f"the session answered {len(turns)} turns")
    last = model.requests[-1]
    chars = sum(len(b.text) for m in last.messages for b in m.content if isinstance(b, TextBlock))
    return sizes, rows, seconds, chars


def run(mode: str, workdir: Path) -> list[Result]:
    reps = 1 if mode == "quick" else 3
    runs = [run_session(workdir / f"session-{i}.db") for i in range(reps)]
    sizes, rows, seconds, chars = runs[0]
    windows = {10: (1, 41), 100: (81, 121), 200: (160, 200)}  # size after turn k is sizes[k - 1]
    marginal: dict[int, float] = {}
    results: list[Result] = []
    for turn, (a, b) in windows.items():
        marginal[turn] = (sizes[b - 1] - sizes[a - 1]) / (b - a)
        row_mean = (rows[b - 1] - rows[a - 1]) / (b - a)
        results.append(Result("session", f"store bytes per turn around turn {turn} (turns {a + 1}-{b})",
                              marginal[turn], "B",
                              note=f"rows written per turn in the window: {row_mean:.0f} B (operations + events JSON: "
                                   "the message, the turn's record, its model call)"))
    per_turn_rows = [b - a for a, b in zip(rows, rows[1:], strict=False)]
    results.append(Result("session", "store bytes per turn, turns 161-200 / turns 2-41", marginal[200] / marginal[10],
                          "x", target=TARGET_SESSION_FLATNESS,
                          note=f"flat = no growth with the conversation; rows written turn 200 / turn 10: "
                               f"{per_turn_rows[-1] / per_turn_rows[8]:.2f}; the last request carried {chars:,} "
                               f"characters of conversation, the journal {rows[-1]:,} B in all",
                          extra={"size_after_turn": sizes, "row_bytes_after_turn": rows}))
    for turn in (10, 100, 200):
        window = [s[turn - 5:turn + 5] if turn < TURNS else s[-10:] for _, _, s, _ in runs]
        results.append(Result("session", f"time per turn around turn {turn}",
                              median([x for w in window for x in w]) * 1000, "ms",
                              note="send + one invocation (replay of every earlier turn + one scripted model call)"))
    return results


if __name__ == "__main__":
    main(run, "session")
