"""A third-party i2i plugin: the generator ``tiny_separable``, the task ``onesided`` and the
command ``i2i tiny-size``.

Its parts are registered by reference ("module:name"): i2i imports them when a run first builds
them, so this module imports no torch and ``i2i list`` and ``i2i --help`` stay quick.
"""

import click

import i2i


@i2i.hookimpl
def register_generators(register):
    register("i2i_example.networks:TinySeparable", "tiny_separable")


@i2i.hookimpl
def register_tasks(register):
    register("i2i_example.task:OneSided", "onesided")


@i2i.hookimpl
def register_commands(cli):
    @cli.command("tiny-size")
    @click.option("--ngf", default=32, show_default=True, help="Generator width.")
    @click.option("--blocks", default=4, show_default=True, help="Separable blocks.")
    def tiny_size(ngf: int, blocks: int) -> None:
        """How many weights tiny_separable has at a width (a command added by a plugin)."""
        net = i2i.create_generator("tiny_separable", ngf=ngf, blocks=blocks)
        click.echo(
            f"tiny_separable ngf {ngf}, {blocks} blocks: {sum(p.numel() for p in net.parameters()):,} weights"
        )
