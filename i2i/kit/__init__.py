"""The task kit: what every training task builds on, and nothing of the trainer.

``task`` (the ``Task`` base class), ``gan`` (``GANTask``: what GANs share), ``step`` (the
optimisation step), ``runtime`` (the interface of the run a task sees), ``pool`` (the image
pool), ``shift`` (the mean shift a translation makes), ``sync`` (finding host reads),
``options``/``groups``/``config`` (typed options).
"""
