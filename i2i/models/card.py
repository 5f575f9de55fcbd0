"""Model cards: huggingface_hub's ``ModelCard`` rendered from i2i's Jinja template.

The YAML front matter makes the Hub index the model (``library_name: i2i``,
``pipeline_tag: image-to-image``, task tags); the body says how to use it and how it was made.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

TEMPLATE = "model_card.md.jinja"


# Where the sample grid's inputs came from (the run's record): a card says so truthfully.
SAMPLES_FROM = {
    "test": "on held-out images",
    "train": "on training images (the data had no test split to hold out)",
}


def _metric(name: str, value: Any) -> str:
    """A metric as a reader takes it in: four significant digits, PSNR in dB."""
    if isinstance(value, float):
        return f"{value:.4g}" + (" dB" if "psnr" in name else "")
    return str(value)


def render_card(
    config: dict[str, Any], repo_id: str | None = None, revision: str | None = None
) -> str:
    """The card of a model; with ``repo_id`` (and the branch or tag ``revision`` it goes to),
    its commands name the model as it is pulled."""
    domains = config.get("domains", {})
    a, b = domains.get("A", "A"), domains.get("B", "B")
    directions = list(config["generators"])
    text = {"AtoB": f"{a} → {b}", "BtoA": f"{b} → {a}"}
    card_data = ModelCardData(
        library_name="i2i",
        pipeline_tag="image-to-image",
        tags=["i2i", config["task"], "image-to-image", "gan", "safetensors"],
        license=config.get("license") or None,
        datasets=list(config.get("datasets", [])) or None,
    )
    training = config.get("training") or {}
    architectures = ", ".join(
        f"{d}: {spec['name']}({', '.join(f'{k}={v}' for k, v in spec.get('kwargs', {}).items())})"
        for d, spec in config["generators"].items()
    )
    card = ModelCard.from_template(
        card_data,
        template_str=files("i2i.model_cards").joinpath(TEMPLATE).read_text(),
        title=f"{config['task']}: {' / '.join(text[d] for d in directions)}",
        summary=(
            f"Translates {' and '.join(text[d] for d in directions)} images"
            + (" (one direction only)." if len(directions) == 1 else ".")
        ),
        task=config["task"],
        architectures=architectures,
        repo_id=f"{repo_id or 'USER/REPO'}{f'@{revision}' if revision else ''}",
        packages=sorted({s["package"] for s in config["generators"].values() if s.get("package")}),
        samples_from=SAMPLES_FROM.get(
            training.get("samples_from"), "on held-out images where the data had them"
        ),
        directions=directions,
        direction_lines=[{"direction": d, "text": text[d]} for d in directions],
        has_samples=config.get("has_samples", False),
        metrics={k: _metric(k, v) for k, v in (config.get("metrics") or {}).items()},
        training=training,
    )
    return str(card)
