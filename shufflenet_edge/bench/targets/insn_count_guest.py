"""Guest side of instruction counting: run inferences between markers for ``insn_count.c``.

Runs under qemu-aarch64 with the plugin loaded, in the emulated userland (standard library,
numpy and the runtime only). It opens the file with the runner's own engine and input, runs one
uncounted inference (it allocates and packs weights), then MARKS empty marker pairs (the cost
of a marker and the loop, subtracted on the host) and INFERENCES inferences each between two
markers. Prints one JSON line: {"engine": ..., "inferences": N} or {"error": "..."} (exit 3).

    python3 insn_count_guest.py RUNTIME_DIR ARTIFACT --inferences N [--engine E] [--batch B]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

MARK_OFFSET = 0x45444745  # insn_count.c's MARK_OFFSET
MARKS = 5


def mark() -> None:
    """lseek on fd -1 fails with EBADF and does nothing else; the plugin records the count."""
    try:
        os.lseek(-1, MARK_OFFSET, os.SEEK_SET)
    except OSError:
        pass


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runtime_dir")
    p.add_argument("artifact")
    p.add_argument("--inferences", type=int, default=7)
    p.add_argument("--engine", default=None)
    p.add_argument("--batch", type=int, default=1)
    a = p.parse_args(argv)
    sys.path.insert(0, a.runtime_dir)
    import engines  # type: ignore  # the runner's siblings, as on a board
    import runner  # type: ignore

    try:
        eng = engines.open_engine(a.artifact, engine=a.engine, threads=1)
        native = eng.prepare(runner.bench_input(eng, a.batch))
        invoke = eng.invoke
        invoke(native)
        for _ in range(MARKS):
            mark()
            mark()
        for _ in range(a.inferences):
            mark()
            invoke(native)
            mark()
        eng.close()
    except engines.EngineError as exc:
        print(json.dumps({"error": str(exc)}))
        return 3
    except Exception as exc:  # one line of JSON whatever breaks, as runner.py does
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        print(json.dumps({"error": f"{type(exc).__name__}: {first}"}))
        return 3
    print(json.dumps({"engine": eng.name, "inferences": a.inferences, "marks": MARKS}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
