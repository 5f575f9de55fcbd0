"""CUT's and FastCUT's recipes: named sets of option values (``--recipe NAME``), each measured
on the known-answer suite (benchmarks/quality.py --suite; the table is in README.md, Better
pictures).

The official code's values stay the defaults, so that a run without a recipe matches it.
"""

import i2i

RECIPES = {
    "quality": i2i.Recipe(
        "No smears in short trainings, and the look learned: a residual generator that starts "
        "near its input (the identity, with its colours mapped as the training sets say; "
        "below), with a full-resolution detail path, averaged weights (EMA 0.999) and "
        "critics on frozen ImageNet features (--disc projected). PatchNCE then keeps the "
        "content from the first step instead of rebuilding it from noise, which is what "
        "smears CUT's pictures at short budgets, and a critic that sees colour balance moves "
        "the pictures along subtle looks an instance-norm PatchGAN cannot tell apart (crisp "
        "+0.13 dB over the input with it, +3.38 with projected critics). NCE weight 0.5, not "
        "the official 1: at 1 PatchNCE holds the pictures near their input (half way along "
        "the look); at 0.5 they go further (+4.62 dB on nine known-answer looks at 1000 steps, "
        "two seeds, against +4.07), and at 0.25 the subtle teal look drifts off. Measured on "
        "thirteen known-answer looks, monet<->photo and ukiyoe<->photo (README.md, Better "
        "pictures). And CycleGAN's mean-shift term at its weight, 10 (the generator's average "
        "change of each region's mean colour held to the training sets' own difference, "
        "shrunk by its noise): CUT's recipe moved too little along looks that change the "
        "mean (graduated +5.42 -> +8.57 dB, dusk +11.08 -> +13.23); every one of six looks "
        "gained, +1.09 dB on their mean, and +0.43 on four more (gray -1.47 -> -0.32; "
        'infrared -0.27) (benchmarks/README.md, "The mean shift in CUT and FastCUT"). '
        "And a colour path that starts at the linear colour map between the two training sets "
        "(the generator's change is read against a learned map of each pixel's colour that "
        "begins as the one giving A's colours B's mean and covariance): +1.55 dB on eight "
        "known-answer looks, every one gaining (dusk +13.23 -> +18.03), monet->photo KID "
        "47.0 -> 42.5 on one seed "
        '(benchmarks/README.md, "The colour path in the recipes").',
        {
            "disc": "projected",
            "ema_decay": 0.999,
            "gen_kw": {"residual": True, "detail": True, "colour": True},
            "lambda_nce": 0.5,
            "lambda_shift": 10.0,
        },
    ),
}

FASTCUT_RECIPES = {
    "quality": i2i.Recipe(
        "CUT's start and critics (a residual generator with the detail path that starts near "
        "its input, EMA 0.999, --disc projected), layer norm in the generator and NCE weight 1. "
        "At FastCUT's NCE weight 10 the generator stays at its input; at 1 it moves, but with "
        "instance norm it drew small coloured blobs on flat areas (a generator can steer an "
        "instance norm's per-channel statistics with one strong local spot) and fell below the "
        "input on teal (-0.68 dB); with layer norm the blobs are gone and every look gains "
        "(teal +1.56). FastCUT has no identity term, so it moves less than CUT's recipe: "
        "+1.99 dB on the mean of nine known-answer looks at 1000 steps (two seeds, every run "
        "gains) against CUT's +4.62, at about 0.6x CUT's time per step. CUT's own recipe "
        "keeps instance norm: its identity term already holds the colours, and layer norm "
        "cost it 1 dB on the mean (README.md, Better pictures). CUT's mean-shift term too, "
        "at weight 10: FastCUT's recipe left looks that darken or warm the picture too light "
        "(dusk's outputs 0.10 of the range above the truth on the mean); with the term every "
        "one of six looks but crisp gained, +2.28 dB on their mean (dusk +3.46 -> +12.88), "
        "and three of four more (+1.30 on their mean; haze +1.87 -> +7.47, infrared -0.68; "
        "at weight 30 the six gained more and the four less) "
        '(benchmarks/README.md, "The mean shift in CUT and FastCUT"). And CUT\'s colour path '
        "(the generator starts at the linear colour map between the training sets): seven of "
        "eight known-answer looks gained, +1.34 dB on their mean (film +0.98 -> +3.63, teal "
        "+1.57 -> +3.73, dusk +12.88 -> +16.09; hue -0.50) "
        '(benchmarks/README.md, "The colour path in the recipes").',
        {
            **RECIPES["quality"].values,
            "lambda_nce": 1.0,
            "norm": "layer",
        },
    ),
}
