"""The papers' published numbers as data (transcribed from shared/reference/papers.md).

Nothing here is measured: these are the figures our measurements are set beside.
"""
from __future__ import annotations

import math

RESOLUTIONS = ((224, 224), (480, 640), (720, 1280))

# ShuffleNet v1 paper, Table 8: one Snapdragon 820, single thread, ms at 224x224 / 480x640 / 720x1280.
TABLE8 = {
    "v1_g3_0.5x": {"label": "ShuffleNet 0.5x (g=3)", "mflops": 38, "top1_err": 43.2, "ms": (15.2, 87.4, 260.1)},
    "v1_g3": {"label": "ShuffleNet 1x (g=3)", "mflops": 140, "top1_err": 32.6, "ms": (37.8, 222.2, 684.5)},
    "v1_g3_2.0x": {"label": "ShuffleNet 2x (g=3)", "mflops": 524, "top1_err": 26.3, "ms": (108.8, 617.0, 1857.6)},
    "alexnet": {"label": "AlexNet", "mflops": 720, "top1_err": 42.8, "ms": (184.0, 1156.7, 3633.9)},
    "mobilenet_v1_1.0x": {"label": "1.0 MobileNet-224", "mflops": 569, "top1_err": 29.4, "ms": (110.0, 612.0, 1879.2)},
}
TABLE8_DEVICE = "Snapdragon 820 (1 thread)"

# The pairs Sec. 4.5 argues with: (slower/bigger model, faster/smaller model).
RATIO_PAIRS = (("v1_g3", "v1_g3_0.5x", "1x / 0.5x"), ("v1_g3_2.0x", "v1_g3", "2x / 1x"),
               ("alexnet", "v1_g3_0.5x", "AlexNet / 0.5x"), ("mobilenet_v1_1.0x", "v1_g3", "MobileNet / 1x"))

# "every 4x theoretical complexity reduction usually results in ~2.6x actual speedup"
PAPER_SPEEDUP_PER_4X = 2.6
PAPER_K = math.log(PAPER_SPEEDUP_PER_4X) / math.log(4)

# The extra block: ShuffleNet v2 (v2 paper Table 5 MFLOPs; its Table 8 ARM = Snapdragon 810, images/s).
V2_BLOCK = {
    "v2_0.5x": {"label": "ShuffleNet v2 0.5x", "mflops": 41, "arm_img_s": 57.0},
    "v2_1.0x": {"label": "ShuffleNet v2 1x", "mflops": 146, "arm_img_s": 24.4},
    "v2_1.5x": {"label": "ShuffleNet v2 1.5x", "mflops": 299, "arm_img_s": 11.8},
    "v2_2.0x": {"label": "ShuffleNet v2 2x", "mflops": 591, "arm_img_s": 6.7},
}

# Independent ARM figures: ncnn benchmark, random weights, 224x224, single thread, ms.
NCNN_MODELS = ("mobilenet_v1_1.0x", "v1_g3", "v2_1.0x", "alexnet")
NCNN = {
    "Snapdragon 810 (A57)": (111.48, 41.49, 37.97, 148.06),
    "Snapdragon 821 (Kryo)": (81.00, 25.02, 24.17, 97.62),
    "Snapdragon 855+": (14.45, 5.37, 5.44, 24.92),
    "Raspberry Pi 4 (A72 1.8 GHz)": (124.32, 47.51, 42.12, 139.40),
    "Raspberry Pi 5 (A76 2.4 GHz)": (20.30, 7.20, 7.14, 35.62),
    "RK3399 (A72)": (111.99, 39.26, 38.02, 165.30),
}
# The papers' MFLOPs for the ncnn models (AlexNet: Table 8's two-tower count).
NCNN_MFLOPS = {"mobilenet_v1_1.0x": 569, "v1_g3": 140, "v2_1.0x": 146, "alexnet": 720}

# ShuffleNet v1 Table 1 / Table 2: complexity and top-1 error of 1x at each group count.
V1_GROUPS = {
    "v1_g1": {"g": 1, "mflops": 143, "top1_err": 33.6},
    "v1_g2": {"g": 2, "mflops": 140, "top1_err": 32.7},
    "v1_g3": {"g": 3, "mflops": 137, "top1_err": 32.6},
    "v1_g4": {"g": 4, "mflops": 133, "top1_err": 32.8},
    "v1_g8": {"g": 8, "mflops": 137, "top1_err": 32.4},
}
V1_GROUPS_CLAIM = 3  # "g=3 was chosen over g=4/8 for actual speed"

# ShuffleNet v2 paper, Tables 1-4: ARM (Snapdragon 810, 1 thread) images/s at channel multiplier x1/x2/x4
# (None: not in papers.md). Rows in the paper's order; "fastest" is the row the guideline predicts wins.
GUIDELINES = {
    "G1": {"title": "equal channel width minimizes memory access cost",
           "table": "Table 1: two stacked 1x1 convs c1 -> c2 -> c1, FLOPs fixed",
           "rows": [
               {"variant": "1:1", "channels": (32, 32), "arm": (76.2, None, None)},
               {"variant": "1:2", "channels": (22, 44), "arm": (72.9, None, None)},
               {"variant": "1:6", "channels": (13, 78), "arm": (69.1, None, None)},
               {"variant": "1:12", "channels": (9, 108), "arm": (57.6, None, None)},
           ], "fastest": "1:1"},
    "G2": {"title": "excessive group convolution increases MAC",
           "table": "Table 2: 1x1 group convs, c wider as g grows, FLOPs fixed",
           "rows": [
               {"variant": "g=1", "channels": (64,), "options": {"groups": 1}, "arm": (40.0, 10.2, 2.3)},
               {"variant": "g=2", "channels": (90,), "options": {"groups": 2}, "arm": (35.0, 9.5, 2.2)},
               {"variant": "g=4", "channels": (128,), "options": {"groups": 4}, "arm": (32.9, 8.7, 2.1)},
               {"variant": "g=8", "channels": (180,), "options": {"groups": 8}, "arm": (27.8, 7.5, 1.8)},
           ], "fastest": "g=1"},
    "G3": {"title": "network fragmentation reduces degree of parallelism",
           "table": "Table 3: 1x1 convs in series or in parallel, FLOPs fixed",
           "rows": [
               {"variant": "1-fragment", "channels": (64,), "options": {"fragments": 1}, "arm": (40.2, None, None)},
               {"variant": "2-series", "channels": (64,), "options": {"fragments": 2}, "arm": (38.6, None, None)},
               {"variant": "4-series", "channels": (64,), "options": {"fragments": 4}, "arm": (38.4, None, None)},
               {"variant": "2-parallel", "channels": (64,), "options": {"fragments": 2, "parallel": True},
                "arm": (33.4, None, None)},
               {"variant": "4-parallel", "channels": (64,), "options": {"fragments": 4, "parallel": True},
                "arm": (35.0, None, None)},
           ], "fastest": "1-fragment"},
    "G4": {"title": "element-wise operations are non-negligible",
           "table": "Table 4: ResNet bottleneck with ReLU and shortcut each removed in turn",
           "rows": [
               {"variant": "ReLU+shortcut", "channels": (32,), "options": {"relu": True, "shortcut": True},
                "arm": (56.7, 16.9, 5.0)},
               {"variant": "no shortcut", "channels": (32,), "options": {"relu": True, "shortcut": False},
                "arm": (61.9, 18.8, 5.2)},
               {"variant": "no ReLU", "channels": (32,), "options": {"relu": False, "shortcut": True},
                "arm": (57.3, 18.2, 5.1)},
               {"variant": "neither", "channels": (32,), "options": {"relu": False, "shortcut": False},
                "arm": (66.3, 20.2, 5.4)},
           ], "fastest": "neither"},
}
GUIDELINES_DEVICE = "Snapdragon 810 (1 thread)"
MULTIPLIERS = (1, 2, 4)


def paper_arm_img_s(guideline: str, variant: str, multiplier: int):
    for row in GUIDELINES[guideline]["rows"]:
        if row["variant"] == variant:
            return row["arm"][MULTIPLIERS.index(int(multiplier))]
    raise KeyError(f"{guideline} has no row {variant!r}")


def table8_ms(model: str, size) -> float | None:
    """The paper's Snapdragon 820 time for a Table 8 model at (h, w), None if not in the table."""
    size = tuple(int(s) for s in size)
    if model not in TABLE8 or size not in RESOLUTIONS:
        return None
    return TABLE8[model]["ms"][RESOLUTIONS.index(size)]
