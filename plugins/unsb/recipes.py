"""UNSB's recipes: named sets of option values (``--recipe NAME``), each measured on the
known-answer suite (benchmarks/quality.py --suite; the table is in README.md, Better pictures).

The paper's values stay the defaults, so that a run without a recipe matches the reference.
The recipe starts from CUT's values, written out rather than imported from it: each task's recipe
is measured on its own, and a change to CUT's must not change UNSB's unmeasured.
"""

import i2i

RECIPES = {
    "quality": i2i.Recipe(
        "No blotches in short trainings: a residual generator that starts near its input (its "
        "first prediction of the endpoint is the path point itself, in the colours of the map "
        "below), with a full-resolution "
        "detail path, averaged weights (EMA 0.999), a discriminator on frozen ImageNet features"
        " (--disc projected, conditioned on the step, reading four levels from half to a "
        "sixteenth of the resolution; the energy network stays a PatchGAN) and a bridge with a "
        "tenth of the paper's noise (tau 0.001). A generator that starts as the identity keeps "
        "the noise of the path point it starts from, so at tau 0.01 five predictions came out "
        "grainy (teal -3.4 dB under the input); at 0.001 most of the grain is gone (the rest "
        "goes with apply's default walk along the path's mean) and one prediction gains more. "
        "The finest level lets five predictions drift less across a look (+0.47"
        " dB over three levels on the mean of 22 paired runs; one prediction +0.21). A "
        "translation walks three of the five predictions (--sample-steps 3; apply --steps 5 "
        "walks all): each later one moves further along the look, past its size (crisp's "
        "sharpening into halos, autumn's warm cast spread over skies and greys). NCE weight "
        "0.5, not the paper's 1: at 1 PatchNCE holds the pictures near their input (half way "
        "along the known-answer looks; at 0.5, 0.60 of the way; at 0.25 teal drifts below its "
        "input). At 1000 steps, along the "
        "path's mean (apply's default), three predictions gain +4.58 dB on the mean of nine "
        "known-answer looks (two seeds, all 18 runs up, teal +1.31; +4.03 at NCE weight 1 on "
        "the same seeds) and +4.25 on four looks written after the recipes were chosen. "
        "The paper's values give blotches at such budgets (README.md, Better pictures). And "
        "the colour path that CUT's recipe has (each prediction's change is read against a "
        "learned map of the pixels' colours that starts at the linear colour map between the "
        "training sets): on four known-answer looks, three gained, +1.36 dB on their mean "
        "(film +2.12 -> +4.02, sepia +8.00 -> +10.28, teal +1.49 -> +2.95; hue -0.22) "
        '(benchmarks/README.md, "The colour path in the recipes").',
        {
            "disc": "projected",
            "disc_kw": {"levels": [0, 1, 2, 3]},
            "ema_decay": 0.999,
            "gen_kw": {"residual": True, "detail": True, "colour": True},
            "tau": 0.001,
            "sample_steps": 3,
            "lambda_nce": 0.5,
        },
    ),
}
