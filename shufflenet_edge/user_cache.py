"""Where the toolkit keeps what it can rebuild (exports, qemu sysroots, the demo's TLS
certificate): ``$EDGE_CACHE_DIR``, else ``~/.cache/shufflenet-edge``. A leaf module, so that
any part of the package can use it without importing another part."""
from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    base = os.environ.get("EDGE_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "shufflenet-edge")
    return Path(base)
