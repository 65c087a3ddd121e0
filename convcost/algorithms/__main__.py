"""``python -m convcost.algorithms > docs/algorithms.md`` writes the algorithms page."""

from convcost.algorithms.page import document

print(document(), end="")
