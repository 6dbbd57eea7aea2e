"""``edge demo``: serve the on-device web app (``demo/app/``) and exported models to a phone.

>>> from shufflenet_edge.demo import DemoServer
>>> with DemoServer("exports", port=0) as srv:        # a free port; srv.url is the page
...     records = srv.wait_for_report("v2_1.0x_224_int8.onnx", timeout=300)

Inference runs in the browser (WebAssembly); the server only hands out files, lists the models
with their sidecar metadata, and turns the page's benchmark reports into ``edge bench`` records.
"""
from .assets import APP_DIR
from .reports import MAX_BODY
from .server import RESULTS_SUBDIR, DemoServer, default_results_dir

__all__ = ["DemoServer", "APP_DIR", "MAX_BODY", "RESULTS_SUBDIR", "default_results_dir"]
