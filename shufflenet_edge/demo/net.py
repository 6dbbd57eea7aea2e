"""This machine's address on the local network (for the phone URL and the TLS certificate)."""
from __future__ import annotations

import socket


def lan_address() -> str | None:
    """This machine's address on its default route (no packet is sent: UDP connect only picks a route)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: never reached, only routed
        ip = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if ip.startswith("127.") else ip
