"""Training: the trainer's loop (``trainer``) and its parts: the data it feeds (``feed``), the run
folder (``run_folder``), checkpoints and resume (``checkpoints``), samples, eval and the summary
(``outputs``), the learning-rate schedule (``schedule``), signals (``stop``), the compiled step
(``compiled``), the augmentation (``augmentation``), EMA (``ema``), the log (``logger``) and the
runtime the kit's tasks run on (``runtime``)."""
