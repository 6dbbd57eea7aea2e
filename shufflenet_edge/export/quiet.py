"""Keep converter chatter (litert progress, absl/glog lines, torch.onnx banners, warnings) off
the user's terminal: it goes to a log that is shown only on failure or with --verbose. It has
to happen at the file-descriptor level because much of it comes from C++."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings

# Read by TensorFlow-derived native code when it first loads.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GLOG_minloglevel", "2")


class Log:
    def __init__(self):
        self.file = tempfile.TemporaryFile(mode="w+b")

    def tail(self, n: int = 40) -> str:
        self.file.flush()
        self.file.seek(0)
        return b"\n".join(self.file.read().splitlines()[-n:]).decode("utf-8", "replace")


@contextlib.contextmanager
def silenced(enabled: bool = True):
    """Redirect fds 1 and 2 (and Python warnings/logging) into a Log while the block runs."""
    log = Log()
    if not enabled:
        yield log
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(log.file.fileno(), 1)
    os.dup2(log.file.fileno(), 2)
    previous_disable = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield log
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        logging.disable(previous_disable)
