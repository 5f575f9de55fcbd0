"""CUT's recipes: named sets of option values (``--recipe NAME``), each measured on the
known-answer suite (benchmarks/quality.py --suite; the table is in README.md, Better pictures).

The official code's values stay the defaults, so that a run without a recipe matches it.
"""

import i2i

RECIPES = {
    "quality": i2i.Recipe(
        "No smears in short trainings, and the look learned: a residual generator that starts "
        "as the identity, with a full-resolution detail path, averaged weights (EMA 0.999) and "
        "critics on frozen ImageNet features (--disc projected). PatchNCE then keeps the "
        "content from the first step instead of rebuilding it from noise, which is what "
        "smears CUT's pictures at short budgets, and a critic that sees colour balance moves "
        "the pictures along subtle looks an instance-norm PatchGAN cannot tell apart (crisp "
        "+0.13 dB over the input with it, +3.38 with projected critics). Measured on nine "
        "known-answer looks and monet<->photo at 1000 steps (README.md, Better pictures).",
        {"disc": "projected", "ema_decay": 0.999, "gen_kw": {"residual": True, "detail": True}},
    ),
}
