"""``edge demo``: serve the on-device web app (``android_demo/``) and exported models to a phone.

>>> from shufflenet_edge.demo import DemoServer
>>> with DemoServer("exports", port=0) as srv:        # a free port; srv.url is the page
...     records = srv.wait_for_report("v2_1.0x_224_int8.onnx", timeout=300)

Inference runs in the browser (WebAssembly); the server only hands out files, lists the models
with their sidecar metadata, and turns the page's benchmark reports into ``edge bench`` records.
"""
from .reports import DEFAULT_OUT, MAX_BODY
from .server import APP_DIR, DemoServer

__all__ = ["DemoServer", "APP_DIR", "DEFAULT_OUT", "MAX_BODY"]
