"""Concurrent answers: several processes answer the same callbacks at once, each with its own
answer, as impatient people and retried webhooks do. Exactly one answer per callback is accepted,
every other one is refused with CallbackNotFoundError, and the execution resumes with the accepted
answer.

Sizes: DURAGENT_ANSWER_CALLBACKS callbacks, DURAGENT_ANSWER_PROCESSES processes (each answers
every callback once, in its own random order). ``make soak`` runs thousands of answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from duragent.durable import DurableContext, LocalRuntime, durable_function

REPO = Path(__file__).resolve().parents[2]
CALLBACKS = int(os.environ.get("DURAGENT_ANSWER_CALLBACKS", "30"))
PROCESSES = int(os.environ.get("DURAGENT_ANSWER_PROCESSES", "4"))

ANSWERER = """
import json, os, random, sys, time
from duragent.durable import LocalRuntime
from duragent.durable.errors import CallbackNotFoundError

db, me, ids, go = sys.argv[1], sys.argv[2], json.loads(open(sys.argv[3]).read()), sys.argv[4]
random.Random(me).shuffle(ids)
accepted, refused = [], 0
with LocalRuntime(db) as rt:
    open(go + "." + me, "w").close()  # ready
    deadline = time.monotonic() + 60
    while not os.path.exists(go):  # every process starts answering at the same moment
        assert time.monotonic() < deadline
        time.sleep(0.001)
    for callback_id in ids:
        try:
            rt.send_callback_success(callback_id, json.dumps({"by": me}))
            accepted.append(callback_id)
        except CallbackNotFoundError:
            refused += 1
print(json.dumps({"accepted": accepted, "refused": refused}))
"""


@durable_function(name="awaits-one-answer")
def awaits_one_answer(event: Any, ctx: DurableContext) -> Any:
    return ctx.wait_for_callback(lambda callback_id: None, name="answer")


def test_exactly_one_concurrent_answer_is_accepted_per_callback(tmp_path: Path) -> None:
    db = tmp_path / "answers.db"
    with LocalRuntime(db) as rt:
        for i in range(CALLBACKS):
            rt.start(awaits_one_answer, {}, execution_id=f"a{i}")
        rt.run_until_idle()
        callbacks = {op.CallbackDetails.CallbackId: f"a{i}" for i in range(CALLBACKS) for op in rt.operations(f"a{i}")
                     if op.CallbackDetails is not None}
    assert len(callbacks) == CALLBACKS

    ids, go = tmp_path / "ids.json", tmp_path / "go"
    ids.write_text(json.dumps(list(callbacks)))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", ANSWERER, str(db), f"p{n}", str(ids), str(go)], cwd=REPO,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in range(PROCESSES)]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("go.p*"))) < PROCESSES:  # every answerer has its store open
        assert time.monotonic() < deadline and all(proc.poll() is None for proc in procs)
        time.sleep(0.005)
    go.touch()
    reports: dict[str, dict[str, Any]] = {}
    for n, proc in enumerate(procs):
        out, err = proc.communicate(timeout=120 + CALLBACKS * PROCESSES / 50)
        assert proc.returncode == 0, err
        reports[f"p{n}"] = json.loads(out)

    winners = {cid: who for who, report in reports.items() for cid in report["accepted"]}
    accepted = Counter(cid for report in reports.values() for cid in report["accepted"])
    assert set(accepted) == set(callbacks) and set(accepted.values()) == {1}, accepted.most_common(3)
    assert sum(r["refused"] for r in reports.values()) == CALLBACKS * (PROCESSES - 1)

    with LocalRuntime(db) as rt:
        rt.register(awaits_one_answer)
        rt.run_until_idle()
        for cid, eid in callbacks.items():
            info = rt.get(eid)
            assert info.status == "SUCCEEDED" and info.result == {"by": winners[cid]}
