"""CUT's recipes: named sets of option values (``--recipe NAME``), each measured on the
known-answer suite (benchmarks/quality.py --suite; the table is in README.md, Better pictures).

The official code's values stay the defaults, so that a run without a recipe matches it.
"""

import i2i

_NO_SMEARS = {"ema_decay": 0.999, "gen_kw": {"residual": True, "detail": True}}

RECIPES = {
    "quality": i2i.Recipe(
        "No smears in short trainings: a residual generator that starts as the identity, with "
        "a full-resolution detail path, and averaged weights (EMA 0.999). PatchNCE then keeps "
        "the content from the first step instead of rebuilding it from noise, which is what "
        "smears CUT's pictures at short budgets. Measured on six known-answer looks and "
        "monet<->photo at 1000 steps (README.md, Better pictures).",
        _NO_SMEARS,
    ),
}

FASTCUT_RECIPES = {
    "quality": i2i.Recipe(
        "CUT's quality recipe on FastCUT (no identity term, flip equivariance): the generator "
        "starts as the identity with a detail path, EMA 0.999, and NCE weight 1 instead of 10, "
        "since a generator that starts as the identity already keeps the content and weight 10 "
        "holds it there (film look: -0.07 dB at 10, +1.18 dB at 1). Measured on the six "
        "known-answer looks at 1000 steps (README.md, Better pictures).",
        {**_NO_SMEARS, "lambda_nce": 1.0},
    ),
}
