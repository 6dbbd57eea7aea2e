"""The web app's files, shipped inside the package (``demo/app/``) so a wheel carries them.

``app/vendor/`` holds the few runtime files the page loads (onnxruntime-web, tfjs-core,
tfjs-tflite), copied out of ``android_demo/node_modules`` by ``npm ci``'s postinstall step
(``android_demo/scripts/vendor.mjs``) before a wheel is built.
"""
from __future__ import annotations

import json
from pathlib import Path

from .paths import inside

APP_DIR = Path(__file__).resolve().parent / "app"
VENDOR_DIR = APP_DIR / "vendor"
APP_FILES = ("index.html", "sw.js", "manifest.webmanifest", "src/", "icons/", "vendor/")
SETUP_HINT = ("the demo's runtime files are missing from {dir}: in a checkout run `npm ci` in android_demo/ "
              "(scripts/setup.sh does; it copies them there); a wheel built without them cannot serve the demo")


def runtimes_missing() -> str | None:
    """None when the runtime files are in place, else the one-line fix."""
    return None if (VENDOR_DIR / "versions.json").is_file() else SETUP_HINT.format(dir=VENDOR_DIR)


def runtime_versions() -> dict:
    """{"onnxruntime-web": "1.30.0", "tfjs-tflite": ..., ...} as vendored."""
    try:
        versions = json.loads((VENDOR_DIR / "versions.json").read_text())
    except (OSError, ValueError):
        return {}
    return versions if isinstance(versions, dict) else {}


def app_file(route: str) -> Path | None:
    """The file behind a URL path of the app, never one outside its own folder."""
    if route in ("/", "/index.html"):
        return APP_DIR / "index.html"
    if route == "/favicon.ico":
        return APP_DIR / "icons" / "icon-192.png"
    rel = route.lstrip("/")
    for entry in APP_FILES:
        if entry.endswith("/") and rel.startswith(entry):
            return inside(APP_DIR / entry, rel[len(entry):])  # its own folder, not the whole app dir
        if rel == entry:
            return APP_DIR / entry
    return None
