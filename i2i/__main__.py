"""``python -m i2i`` (what ``torchrun ... -m i2i train ...`` runs)."""

from i2i.cli import main

if __name__ == "__main__":
    main()
