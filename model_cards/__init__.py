"""Jinja templates for model cards (installed as i2i.model_cards)."""
