"""CUT's recipes: named sets of option values (``--recipe NAME``), each measured on the
known-answer suite (benchmarks/quality.py --suite; the table is in README.md, Better pictures).

The official code's values stay the defaults, so that a run without a recipe matches it.
"""

import i2i

RECIPES = {
    "quality": i2i.Recipe(
        "No smears in short trainings: a residual generator that starts as the identity, with "
        "a full-resolution detail path, and averaged weights (EMA 0.999). PatchNCE then keeps "
        "the content from the first step instead of rebuilding it from noise, which is what "
        "smears CUT's pictures at short budgets. Measured on six known-answer looks and "
        "monet<->photo at 1000 steps (README.md, Better pictures). FastCUT has none: the "
        "same values (NCE weight 1) put colour casts it has no identity term against on "
        "the crisp look (-1.75 dB).",
        {"ema_decay": 0.999, "gen_kw": {"residual": True, "detail": True}},
    ),
}
