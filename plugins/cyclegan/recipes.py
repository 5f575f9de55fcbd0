"""CycleGAN's recipes: named sets of option values (``--recipe NAME``), each measured on the
known-answer benchmark (benchmarks/quality.py; the table is in benchmarks/README.md).

The paper's values stay the defaults, so that a run without a recipe matches the official code.
"""

import i2i

RECIPES = {
    "quality": i2i.Recipe(
        "Better pictures in short trainings, on looks it was never tuned on: a residual, "
        "anti-aliased generator that changes its input (from the colour map below; no "
        "checkerboard) with a full-resolution detail path (texture and grain the "
        "4x-downsampled trunk cannot draw), averaged weights (EMA 0.999), cycle weight 1 so "
        "the cycle no longer pins the generators to their input, and critics on frozen "
        "ImageNet features (--disc projected) in place of an identity term: an "
        "instance-norm critic cannot see an "
        "image's colour balance, so an identity term had to hold colour casts, and it also "
        "held the generator at its input on subtle looks; a critic that sees the look, "
        "subtle ones included, does that job itself; they read four levels of features, "
        "the finest at half resolution (texture and fine colour the coarser levels miss), "
        "and a small head reads the raw pixels (grain, streaks and ringing that the frozen "
        "features barely see: it gains most where a flaw must be taken away); "
        "no image pool, so the critics learn from the fakes the generators make now, not (half "
        "the time) pooled ones about 100 steps old (runs depend less on their seed, and the "
        "two subtle looks gain most), and a mean-shift term (weight 10: each generator's "
        "average change of each region's mean colour is held to the training sets' own "
        "difference, shrunk by its noise, which takes away a drift in brightness that the "
        "critic lets through: +0.64 dB on five flaws, seventeen looks level; the shrinkage "
        "+0.11 dB on six). "
        "Measured on thirteen known-answer looks, monet<->photo and ukiyoe<->photo "
        "(benchmarks/quality.py; table in README.md, Better pictures); seven of the looks "
        "were written after an earlier form of the recipe had been fixed, to check that it "
        "generalises; the pixel head on eight looks and four flaws, the mean-shift term on "
        "eleven looks and five flaws, and six looks after it joined, through the CLI. "
        "And a colour path: the generators start at the linear colour map between the two "
        "training sets (A's colours given B's mean and covariance, moving them least), bent "
        "per pixel by a small curve on each pixel's colour, with each pixel's share of the "
        "map's change gated by its colour too, so that an object the map gets wrong keeps its "
        "outline (the toy's sun, which the map darkens with the sky, becomes a round moon): "
        "+1.73 dB on nine looks and flaws, six gaining, monet<->photo KID level, the toy's "
        'moons round (benchmarks/README.md, "The colour gate"). '
        "And the colour map followed by a gain and an offset that vary over the frame (a 4x4 "
        "grid), started at each region's spread of brightness and mean colour as the sets tell "
        "them: looks that darken corners, graduate a sky or veil the top (film +1.94 dB, "
        "graduated +2.50, haze +7.63, dusk +0.77; sepia, infrared, teal and hue -0.09 to "
        "-0.34; +1.32 on nine looks), the toy's moons round again "
        '(benchmarks/README.md, "The colour regions").',
        {
            "disc": "projected",
            "disc_kw": {"levels": [0, 1, 2, 3], "pixels": True},
            "ema_decay": 0.999,
            "gen_kw": {
                "antialias": True,
                "residual": True,
                "detail": True,
                "colour": True,
                "colour_curve": True,
                "colour_gate": True,
                "colour_regions": True,
            },
            "lambda_cycle": 1.0,
            "lambda_identity": 0.0,
            "lambda_shift": 10.0,
            "pool_size": 0,
        },
    ),
}
