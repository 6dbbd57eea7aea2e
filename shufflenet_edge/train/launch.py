"""``edge train --nproc N``: run torchrun on this machine, with ``python -m shufflenet_edge.train``
as every process's program (the same flags as ``edge train``).

torchrun's own agent runs inside this process (``torch.distributed.run``), so the ranks are its
children and a failed rank ends the job the way torchrun ends it: the others are stopped.
"""
from __future__ import annotations

import logging
import os
import signal

from ..errors import RuntimeFailure, UsageError

MAX_NPROC = 256


def launch(nproc: int, argv: list[str], threads: int | None = None) -> None:
    """Run ``argv`` (``edge train`` flags, without --nproc) in ``nproc`` local processes."""
    if not 1 <= nproc <= MAX_NPROC:
        raise UsageError(f"--nproc must be in [1, {MAX_NPROC}], got {nproc}")
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    # one intra-op thread per rank unless told otherwise: N ranks x all cores would oversubscribe
    os.environ["OMP_NUM_THREADS"] = str(threads or 1)
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    args = get_args_parser().parse_args(["--standalone", f"--nproc-per-node={nproc}", "--max-restarts=0",
                                         "-m", "shufflenet_edge.train", *argv])
    from torch.distributed.elastic.multiprocessing.api import SignalException

    try:
        run(args)
    except ChildFailedError as exc:
        raise _failure(exc) from None
    except SignalException as exc:  # Ctrl-C or SIGTERM to this launcher: the ranks were stopped
        raise KeyboardInterrupt from exc


def _failure(exc) -> Exception:
    # a rank killed by a signal is the cause; the others failed (or were sent SIGTERM by torchrun)
    # because it was gone
    rank, failure = min(exc.failures.items(),
                        key=lambda kv: (kv[1].exitcode >= 0, kv[1].exitcode == -signal.SIGTERM, kv[0]))
    code = int(failure.exitcode)
    if code < 0:  # killed by a signal: nothing on that rank could say why
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return RuntimeFailure(f"training rank {rank} was killed by {name}; the others were stopped: "
                              "continue from the last finished epoch with --resume")
    # the rank printed its own one-line error: exit with its code and add nothing
    return _Quiet(code)


class _Quiet(RuntimeFailure):
    """A rank already printed the error line; only its exit code remains to pass on."""

    def __init__(self, code: int):
        super().__init__("")
        self.exit_code = code
        self.quiet = True
