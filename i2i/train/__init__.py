"""Training: the trainer loop, the task kit, typed options and the runtime (devices, DDP)."""
