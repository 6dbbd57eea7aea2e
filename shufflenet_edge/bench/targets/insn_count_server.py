"""Guest side of counting many ONNX files in one emulated process (``qemu.CountingServer``).

Python, numpy and onnxruntime take ~7e8 instructions (seconds, emulated) to start: ``edge predict
fit --device arm`` counts hundreds of micro-models, so it pays that once. Runs under
qemu-aarch64 with ``insn_count.c`` loaded, in the emulated userland (standard library, numpy,
the runtime only). First line out: ``{"ready": true, "versions": {...}}``. Then one JSON request
per stdin line, ``{"path": FILE, "plain": false, "inferences": N, "seed": S}``, answered by one
JSON line: ``{"empty_pairs": E, "seconds": {...}}`` once E empty marker pairs and N marked
inferences are done (the plugin has written their 2 * (E + N) marks by then), or
``{"error": "one line"}``. ``seconds`` is how long opening (with the warm-up) and one inference
took, emulated: the host plans its time budget with it.

Each file opens as ``edge bench`` opens it (``runtime/micro_session.py``: the runtime's own
session settings) with standard-normal float32 for every input, runs one uncounted inference
(it allocates and packs weights), then is counted: through IO binding (a micro-model's own
work, no output copy) or, with ``plain``, as ``edge bench`` runs a whole model.

    python3 insn_count_server.py RUNTIME_DIR
"""
from __future__ import annotations

import json
import platform
import sys
import time

from insn_count_guest import MARKS, mark  # type: ignore  # a sibling (this script's own folder)


def _first_line(exc: BaseException) -> str:
    return ((str(exc).strip().splitlines() or [type(exc).__name__])[0])[:300]


def count(MicroSession, req: dict) -> dict:
    started = time.perf_counter()
    sess = MicroSession(req["path"], threads=1, metadata={})
    feeds = sess.feeds(int(req.get("seed", 0)))
    invoke, arg = sess.plain(feeds) if req.get("plain") else sess.bound(feeds)
    invoke(arg)
    warm = time.perf_counter()
    for _ in range(MARKS):
        mark()
        mark()
    n = int(req.get("inferences", 3))
    for _ in range(n):
        mark()
        invoke(arg)
        mark()
    done = time.perf_counter()
    sess.close()
    # emulated seconds (the host plans its budget with them; the counts do not depend on them)
    return {"empty_pairs": MARKS, "seconds": {"open_and_warm_up": warm - started, "inference": (done - warm) / max(n, 1)}}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sys.path.insert(0, argv[0])
    import numpy  # noqa: F401  (its version is reported)
    import onnxruntime
    from micro_session import MicroSession  # type: ignore  # the runtime folder's module

    hello = {"ready": True, "versions": {"onnxruntime": onnxruntime.__version__, "numpy": numpy.__version__,
                                         "python": platform.python_version(), "machine": platform.machine()}}
    print(json.dumps(hello), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = count(MicroSession, json.loads(line))
        except Exception as exc:  # one line of JSON whatever breaks: the host goes on with the next file
            named = type(exc).__name__ != "EngineError"  # the runtime's own errors are already one line for users
            answer = {"error": (f"{type(exc).__name__}: " if named else "") + _first_line(exc)}
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
