"""``i2i export``, ``i2i convert``, ``i2i push`` and ``i2i pull``: making and moving model folders."""

from __future__ import annotations

from pathlib import Path

import click

from i2i.cli.group import cli, detail_option, not_empty, output_folder, scale_option
from i2i.core.errors import I2IError


@cli.command()
@click.argument("model")
@output_folder
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["safetensors", "onnx"]),
    default="safetensors",
    show_default=True,
    help="safetensors: a model folder; onnx: one graph per direction.",
)
@click.option("--with-discriminators", is_flag=True, help="Also save D (for fine-tuning).")
@click.option(
    "--tolerance",
    default=1e-4,
    show_default=True,
    type=float,
    help="ONNX parity check: largest allowed difference from PyTorch.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing, non-empty OUT.")
def export(
    model: str, out: str, fmt: str, with_discriminators: bool, tolerance: float, overwrite: bool
) -> None:
    """Turn a training run into a model folder, or a run / model into ONNX graphs."""
    from click.core import ParameterSource

    from i2i.core.errors import InvalidArgumentError

    if fmt == "onnx" and with_discriminators:
        raise InvalidArgumentError(
            "--with-discriminators goes with --format safetensors (ONNX graphs hold the "
            "generators only); drop one of them"
        )
    tolerance_given = click.get_current_context().get_parameter_source("tolerance")
    if fmt != "onnx" and tolerance_given is ParameterSource.COMMANDLINE:
        raise InvalidArgumentError(
            "--tolerance is the ONNX parity check; add --format onnx or drop --tolerance"
        )
    if fmt == "onnx":
        from i2i.infer.onnx import export_onnx
        from i2i.models.loader import load_generators

        config, generators = load_generators(model, device="cpu")
        path = export_onnx(
            config, generators, Path(out), tolerance=tolerance, overwrite=overwrite, log=click.echo
        )
        click.echo(f"ONNX graphs written to {path} (try: i2i apply {path} IMAGES -o OUT)")
        return
    from i2i.models.export import export_run

    path = export_run(Path(model), Path(out), with_discriminators, overwrite)
    click.echo(f"model written to {path} (try: i2i apply {path} IMAGES -o OUT)")


@cli.command()
@click.argument("model")
@click.argument("repo_id")
@click.option("--private", is_flag=True, help="Create the repo as private.")
@click.option("--revision", help="Branch to push to (created if missing).")
@click.option("--message", help="Commit message.")
@click.option("--with-discriminators", is_flag=True, help="Include D when MODEL is a run.")
@click.option(
    "--license",
    "license_id",
    help="The model's license as a Hub license id (mit, apache-2.0, cc-by-nc-4.0, other...).",
)
@click.option(
    "--dataset", "datasets", multiple=True, help="A Hub dataset it was trained on (repeatable)."
)
@click.option("--space", help="Also create or update this Gradio Space (USER/SPACE) for the model.")
@scale_option
@detail_option
def push(
    model: str,
    repo_id: str,
    private: bool,
    revision: str | None,
    message: str | None,
    with_discriminators: bool,
    license_id: str | None,
    datasets: tuple[str, ...],
    space: str | None,
    scale: int | str | None,
    detail: str,
) -> None:
    """Upload a model folder or a training run to the Hub as USER/REPO (--scale and --detail,
    as for i2i demo, set how its --space translates)."""
    from i2i.demo.space import check_repo_id
    from i2i.infer.translator import check_scale_and_detail
    from i2i.models.hub import push as push_model

    if not space and (scale is not None or detail != "input"):
        raise I2IError("--scale and --detail set how the Space translates: give them with --space")

    def check(config: dict) -> None:  # the Space's options, before anything is pushed
        check_repo_id(space, "Space id")
        check_scale_and_detail(scale, detail, config)

    info = push_model(
        model,
        repo_id,
        private=private,
        revision=revision,
        message=message,
        with_discriminators=with_discriminators,
        license=license_id,
        datasets=datasets,
        check=check if space else None,
    )
    where = f"{repo_id}@{revision}" if revision else repo_id
    click.echo(f"pushed to {where}: {getattr(info, 'commit_url', info)}")
    if space:
        from i2i.demo.space import publish_space

        published = publish_space(
            repo_id, space, revision=info.oid, private=private, scale=scale, detail=detail
        )
        click.echo(f"space {space} serves {repo_id} at commit {published.revision[:12]}")


@cli.command()
@click.argument("repo_id")
@click.option("--revision", help="Branch, tag or commit (default: main).")
def pull(repo_id: str, revision: str | None) -> None:
    """Download a model into the Hugging Face cache, check it, and print its local path."""
    from i2i.models.hub import pull as pull_model

    click.echo(str(pull_model(repo_id, revision)))


@cli.group()
def convert() -> None:
    """Import checkpoints from other implementations."""


@convert.command("official")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--gen", required=True, help="Registered generator matching the checkpoint.")
@click.option("--gen-kw", multiple=True, metavar="KEY=VALUE", help="Generator arguments.")
@output_folder
@click.option("--direction", default="AtoB", show_default=True, type=click.Choice(["AtoB", "BtoA"]))
@click.option(
    "--task",
    default="cyclegan",
    show_default=True,
    type=click.Choice(["cyclegan", "pix2pix"]),
    help="The official code's model the checkpoint comes from.",
)
@click.option("--domain-a", default="A", show_default=True, callback=not_empty)
@click.option("--domain-b", default="B", show_default=True, callback=not_empty)
@click.option("--overwrite", is_flag=True)
def convert_official_command(
    path: str,
    gen: str,
    gen_kw: tuple[str, ...],
    out: str,
    direction: str,
    task: str,
    domain_a: str,
    domain_b: str,
    overwrite: bool,
) -> None:
    """Official pytorch-CycleGAN-and-pix2pix generator (latest_net_G.pth) -> model folder."""
    from i2i.kit.options import parse_keyvalue
    from i2i.models.convert import convert_official

    folder = convert_official(
        Path(path),
        Path(out),
        gen,
        parse_keyvalue(gen_kw),
        direction=direction,
        task=task,
        domains={"A": domain_a, "B": domain_b},
        overwrite=overwrite,
    )
    click.echo(f"model written to {folder}")
