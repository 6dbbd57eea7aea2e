"""The model table that `edge models` prints and `list_models` users can read as data."""
from __future__ import annotations

from .complexity import complexity
from .models import model_specs


def model_table() -> list[dict]:
    rows = []
    for spec in model_specs():
        c = complexity(spec.name)
        rows.append({
            "name": spec.name, "family": spec.family, "aliases": list(spec.aliases),
            "params": c.params, "macs": c.macs, "default_input_size": spec.default_input_size,
            "paper_mflops": spec.paper.mflops, "paper_params_m": spec.paper.params_m,
            "paper_top1_err": spec.paper.top1_err, "paper_source": spec.paper.source, "config": spec.config,
        })
    return rows
