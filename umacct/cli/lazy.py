"""Commands imported when they run: ``umacct show`` loads one command module, not all of them.

A command module adds its commands with ``register(app)``. The top-level group knows each
command's name, module and one-line help from a table, so that ``umacct --help`` lists them
all without importing any, and running one imports only its own module.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING

import typer
from typer.core import MarkupMode, TyperCommand
from typer.main import get_group

if TYPE_CHECKING:
    from typer._click import Command


class LazyCommands(MutableMapping[str, "Command"]):
    """The commands of a group by name, each built from its module on first use.

    ``table`` maps a command name to its module and the first paragraph of its help.
    """

    def __init__(self, table: Mapping[str, tuple[str, str]], markup: MarkupMode) -> None:
        self._table = dict(table)
        self._markup = markup
        self._loaded: dict[str, Command] = {}

    def __getitem__(self, name: str) -> Command:
        if name not in self._loaded:
            if name not in self._table:
                raise KeyError(name)
            self._loaded[name] = self._build(name)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if (self._table.pop(name, None), self._loaded.pop(name, None)) == (None, None):
            raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        yield from self._table
        yield from (name for name in self._loaded if name not in self._table)

    def __len__(self) -> int:
        return len(set(self._table) | set(self._loaded))

    def summaries(self) -> dict[str, Command]:
        """Each command, or a stand-in with its name and help summary if not loaded yet."""
        return {
            name: self._loaded[name]
            if name in self._loaded
            else TyperCommand(name, help=self._table[name][1])
            for name in self
        }

    def _build(self, name: str) -> Command:
        module = importlib.import_module(self._table[name][0])
        scratch = typer.Typer(rich_markup_mode=self._markup, add_completion=False)
        module.register(scratch)
        # Only the wanted command is turned into a click command (typer reads every
        # parameter's annotations to do so).
        scratch.registered_commands = [c for c in scratch.registered_commands if c.name == name]
        scratch.registered_groups = [g for g in scratch.registered_groups if g.name == name]
        from umacct.cli.common_options import add_output_options
        from umacct.cli.option_values import tidy_parameters

        return tidy_parameters(add_output_options(get_group(scratch).commands[name]))
