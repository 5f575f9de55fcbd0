"""The task kit: the public base class, options and helpers every training task builds on."""
