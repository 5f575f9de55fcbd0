"""``i2i list``, ``i2i describe`` and ``i2i plugins``: what is installed, and what it takes."""

from __future__ import annotations

from typing import Any

import click

from i2i.cli.group import KINDS, cli, parse_kind, print_table


@cli.command("list")
@click.argument("kind", required=False, type=parse_kind)
@click.argument("pattern", required=False, default="*")
def list_command(kind: str | None, pattern: str) -> None:
    """List registered components: KIND is generators, discriminators, losses,
    augmentations, tasks or feature_extractors; PATTERN is a glob such as 'resnet*'."""
    from i2i.core.registry import REGISTRIES

    shown = 0
    for name in [kind] if kind else list(KINDS):
        registry = REGISTRIES[name]
        rows = [[c.name, c.plugin, c.summary] for c in registry if c.name in registry.list(pattern)]
        if rows or pattern == "*":
            print_table(name, ["name", "plugin", "summary"], rows)
        shown += len(rows)
    if not shown:
        listing = f"i2i list {kind}" if kind else "i2i list"
        click.echo(f"nothing matches {pattern!r}; `{listing}` shows them all")


@cli.command()
@click.argument("name")
@click.option(
    "--kind",
    type=parse_kind,
    metavar="KIND",
    help="Which registry, when a name is in several.",
)
def describe(name: str, kind: str | None) -> None:
    """Show a component's parameters and defaults, e.g. `i2i describe resnet9`; for a task, each
    training option with its help and the values its recipes set."""
    from i2i.core.registry import find

    for component in find(name, kind):
        click.echo(f"{component.name} ({component.kind}, plugin {component.plugin})")
        if component.summary:
            click.echo(f"  {component.summary}")
        if component.kind == "task":
            _describe_task(component.factory)
            continue
        rows = [
            [p.name, p.annotation, "(required)" if p.required else repr(p.default)]
            for p in component.parameters
        ]
        if rows:
            print_table("parameters", ["name", "type", "default"], rows)
        else:
            click.echo("  takes no arguments")


def _shown(value: Any) -> str:
    """A value as `i2i describe` shows it: KEY=VALUE pairs for a dict, else its repr."""
    if isinstance(value, dict) and value:
        return " ".join(f"{k}={v}" for k, v in value.items())
    return repr(value)


def _describe_task(task_cls: Any) -> None:
    """One table per option group: each option's name (the key of config files; the flag is
    --name-with-dashes), type, default and help, and the value set by each recipe that touches
    the group."""
    task_cls.declared_options()  # refuses defaults of unknown options
    recipes = getattr(task_cls, "recipes", {})
    for group in task_cls.groups():
        options = group.declared(task_cls.defaults)
        setting = [
            r for r, recipe in recipes.items() if set(recipe.values) & {o.name for o in options}
        ]
        columns = ["option", "type", "default", *(f"recipe {r}" for r in setting), "help"]
        rows = []
        for o in options:
            kind = "KEY=VALUE" if o.keyvalue else getattr(o.type, "__name__", "")
            choices = f" One of: {', '.join(o.choices)}." if o.choices else ""
            values = [
                _shown(recipes[r].values[o.name]) if o.name in recipes[r].values else ""
                for r in setting
            ]
            rows.append([o.name, kind, _shown(o.default), *values, o.help + choices])
        print_table(group.__name__, columns, rows)
    for recipe_name, recipe in recipes.items():
        values = " ".join(
            f"--{k.replace('_', '-')} {_shown(v) if isinstance(v, dict) else v}"
            for k, v in recipe.values.items()
        )
        click.echo(f"recipe {recipe_name}: {recipe.summary}\n  sets {values}")


@cli.command()
def plugins() -> None:
    """List installed plugins, their versions and the hooks they implement."""
    from i2i.core.plugins import failures
    from i2i.core.plugins import plugins as installed

    print_table(
        "plugins",
        ["name", "version", "module", "hooks"],
        [[p.name, p.version, p.module, ", ".join(p.hooks)] for p in installed()],
    )
    for name, error in failures.items():
        click.secho(f"failed: {name}: {error}", err=True, fg="yellow")
