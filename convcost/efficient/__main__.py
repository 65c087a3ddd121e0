"""``python -m convcost.efficient``: print docs/variants.md (the efficient blocks against their papers)."""

from convcost.efficient.papers import page

print(page())
