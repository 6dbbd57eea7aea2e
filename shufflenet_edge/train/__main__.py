"""``python -m shufflenet_edge.train`` (and ``torchrun ... -m shufflenet_edge.train``): ``edge train``'s flags."""
import sys

from shufflenet_edge.cli import main

main(["train", *sys.argv[1:]], prog_name="python -m shufflenet_edge.train")
