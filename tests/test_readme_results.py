"""Every README figure quoted from a committed result agrees with that file (issue 14)."""
from pathlib import Path

from readme_results import MARKER, check

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_figures_match_their_result_files():
    n, problems = check(README, ROOT)
    assert n >= 20, f"only {n} marked figures"
    assert problems == []


def test_an_edited_figure_fails_the_check():
    m = next(MARKER.finditer(README))
    head = README[:m.start()].rstrip()
    # change the last digit of the figure in front of the first marker
    i = max(j for j, c in enumerate(head) if c.isdigit())
    edited = head[:i] + str((int(head[i]) + 1) % 10) + README[len(head):]
    n, problems = check(edited, ROOT)
    assert len(problems) == 1 and "shows" in problems[0]
