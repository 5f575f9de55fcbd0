"""``i2i train TASK``: one subcommand per registered task, its flags made from the task's options."""

from __future__ import annotations

import signal
import sys
from typing import Any

import click

from i2i.cli.group import cli


def _click_option(option: Any) -> click.Option:
    from i2i.kit.options import Option

    assert isinstance(option, Option)
    if option.switch:
        return click.Option(
            [option.flag, option.name],
            is_flag=True,
            flag_value=not option.default,
            default=option.default,
            help=option.help + (" On by default; this turns it off." if option.default else ""),
        )
    if option.keyvalue:
        return click.Option(
            [option.flag, option.name], multiple=True, metavar="KEY=VALUE", help=option.help
        )
    kind: Any = click.Choice(option.choices) if option.choices else (option.type or str)
    default = f" [default: {option.default}]" if option.default is not None else ""
    return click.Option([option.flag, option.name], type=kind, help=option.help + default)


class TrainGroup(click.Group):
    """One subcommand per registered task, its flags generated from the task's options."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from i2i.core.registry import tasks

        return tasks.list()

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The tasks and their summaries as listed, so `i2i train --help` imports no task."""
        from i2i.core.registry import tasks

        rows = [(task.name, task.summary) for task in tasks]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from i2i.core.registry import tasks

        task_cls = tasks.get(cmd_name).factory
        params = [_click_option(o) for o in task_cls.declared_options()]
        params.append(
            click.Option(
                ["--config"],
                type=click.Path(dir_okay=False),
                help="YAML or JSON file of options; flags override it.",
            )
        )

        def run(**values: Any) -> None:
            from click.core import ParameterSource

            import i2i

            ctx = click.get_current_context()
            given = {
                k: v
                for k, v in values.items()
                if ctx.get_parameter_source(k)
                in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
            }
            if "config" in given:
                given["config_file"] = given.pop("config")
            result = i2i.fit(i2i.create_task(cmd_name, **given))
            if result.interrupted:  # 130 for Ctrl-C, 143 for SIGTERM, as a shell says
                sys.exit(128 + (result.signal or signal.SIGINT))

        return click.Command(cmd_name, params=params, callback=run, help=task_cls.__doc__)


@cli.group(cls=TrainGroup)
def train() -> None:
    """Train a task, e.g. `i2i train cyclegan --data DIR`; without --data it trains on a
    built-in toy day/night dataset."""
