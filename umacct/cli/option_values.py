"""Our own words for a bad option value, whatever library checks it.

typer checks the values of typed options (integers, ranges, choices) through pydantic, whose
messages ("Input should be greater than or equal to 1", "Value error, 'x' is not one of...")
mean nothing to a sysadmin. ``tidy_parameters`` wraps every parameter of a command so that a
refused value says, in one line, which option, what it expects and what was typed:
``--limit: expected a whole number of 1 or more, got 'abc'`` (exit 2, a usage error). It
also gives a number option the placeholder ``N`` in the help (not ``<int range>``).
"""

from __future__ import annotations

import enum
import pathlib
import types
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from typer._click.exceptions import BadParameter, UsageError

if TYPE_CHECKING:
    from typer._click import Command, Context, Parameter


class OptionValueError(UsageError):
    """A value the command line refuses, in the tool's words (exit 2)."""

    def show(self, file: Any = None) -> None:
        """One line on stderr, as every other error of the tool (before any command ran)."""
        import sys

        (file or sys.stderr).write(f"umacct: error: {self.message}\n")


def option_name(param: Parameter) -> str:
    """How the user typed the parameter: its longest option name, or the argument's metavar."""
    opts: list[str] = [opt for opt in getattr(param, "opts", []) if opt.startswith("--")]
    if getattr(param, "param_type_name", "") == "option" and opts:
        return opts[0]
    return str(param.metavar or param.name or "value").upper()


def _base_annotation(param: Parameter) -> Any:
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        kept = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        annotation = kept[0] if len(kept) == 1 else annotation
    return annotation


def choices_of(param: Parameter) -> list[str] | None:
    """The values a choice parameter accepts, as typed (None for another parameter)."""
    descriptor = getattr(param, "type_descriptor", None)
    choices = getattr(descriptor, "choices", None) if descriptor is not None else None
    if not choices:
        return None
    return [str(c.value if isinstance(c, enum.Enum) else c) for c in choices]


def expectation(param: Parameter) -> str | None:
    """What the parameter expects, in words; None when the library's check is not ours to word."""
    choices = choices_of(param)
    if choices is not None:
        return "one of " + ", ".join(choices)
    annotation = _base_annotation(param)
    if annotation is int:
        info = getattr(param.type_descriptor, "parameter_info", None)  # type: ignore[attr-defined]
        low, high = getattr(info, "min", None), getattr(info, "max", None)
        if low is not None and high is not None:
            return f"a whole number from {low} to {high}"
        if low is not None:
            return f"a whole number of {low} or more"
        if high is not None:
            return f"a whole number of {high} or less"
        return "a whole number"
    if annotation is float:
        return "a number"
    return None


def refused(param: Parameter, value: object) -> str:
    """The one-line message for ``value`` refused by ``param``."""
    shown = value[0] if isinstance(value, list | tuple) and len(value) == 1 else value
    expected = expectation(param) or "a valid value"
    return f"{option_name(param)}: expected {expected}, got {str(shown)!r}"


_TEXT = (str, str | None)  # equal to Optional[str] too: the tuple is searched with ==


def _left_as_is(param: Parameter, value: Any) -> bool:
    """Whether typer's coercion would hand ``value`` back unchanged (no need to ask it).

    Its coercion goes through pydantic, whose import alone costs a command ~70 ms: an absent
    value, a text typed for a text option, a number's own default and a flag skip it (and a
    path is checked without it, see ``_path_value``).
    """
    if param.multiple or param.nargs != 1:
        return False
    if value is None:
        return True
    descriptor = param.type_descriptor  # type: ignore[attr-defined]
    annotation = descriptor.annotation
    if annotation in _TEXT and descriptor.parameter_info.parser is None:
        return isinstance(value, str)
    base = _base_annotation(param)
    if base is int and type(value) is int:
        return not descriptor.is_ranged or value == param.default
    return base is bool and type(value) is bool  # a flag: set or not, by the parser itself


def _path_value(param: Parameter, ctx: Context, value: Any) -> Any:
    """A path typed for a plain ``Path`` option, checked as typer checks it, or None.

    typer builds every path option's coercion with pydantic; its own checks (exists,
    readable...) are called here directly, on the path as a ``Path``, without it.
    """
    info = getattr(param.type_descriptor, "parameter_info", None)  # type: ignore[attr-defined]
    if (
        type(value) is not str
        or _base_annotation(param) is not pathlib.Path
        or info is None
        or info.allow_dash
        or info.path_type is not None
        or info.parser is not None
        or param.multiple
        or param.nargs != 1
    ):
        return None
    from typer._param_types import coerce_cli_path

    return coerce_cli_path(pathlib.Path(value), info, path_type=pathlib.Path, param=param, ctx=ctx)  # type: ignore[arg-type]


def _kept(param: Parameter, ctx: Context, value: Any) -> Any:
    """What typer's ``process_value`` does after its coercion."""
    if param.required and param.value_is_missing(value):
        from typer._click.exceptions import MissingParameter

        raise MissingParameter(ctx=ctx, param=param)  # type: ignore[arg-type]
    return param.callback(ctx, param, value) if param.callback is not None else value


def _guarded(param: Parameter, process: Callable[[Context, Any], Any]) -> Callable[..., Any]:
    def process_value(ctx: Context, value: Any) -> Any:
        try:
            if _left_as_is(param, value):
                return _kept(param, ctx, value)
            if (path := _path_value(param, ctx, value)) is not None:
                return _kept(param, ctx, path)
            return process(ctx, value)
        except OptionValueError:
            raise
        except BadParameter as error:
            if error.param is not param or expectation(param) is None:
                raise
            raise OptionValueError(refused(param, value), ctx=ctx) from None

    return process_value


def tidy_parameters(command: Command) -> Command:
    """Our words for refused values and ``N`` for numbers, on the command and its subcommands."""
    for sub in (getattr(command, "commands", None) or {}).values():
        tidy_parameters(sub)
    return tidy_own_parameters(command)


def tidy_own_parameters(command: Command) -> Command:
    """``tidy_parameters`` for the command's own parameters (and ``--help``) alone."""
    for param in command.params:
        _tidy(param)
    if not getattr(command, "_umacct_tidy", False):
        setattr(command, "get_help_option", _tidied_help(command.get_help_option))  # noqa: B010
        command._umacct_tidy = True  # type: ignore[attr-defined]
    return command


def _tidy(param: Parameter) -> Parameter:
    if getattr(param, "_umacct_tidy", False) or not hasattr(param, "type_descriptor"):
        return param
    if _base_annotation(param) is int and param.metavar is None:
        param.metavar = "N"
    param.process_value = _guarded(param, param.process_value)  # type: ignore[method-assign]
    param._umacct_tidy = True  # type: ignore[attr-defined]
    return param


def _tidied_help(get_help_option: Callable[[Context], Any]) -> Callable[[Context], Any]:
    """The command's ``--help``, made when first asked for, tidied like the other options."""

    def tidied(ctx: Context) -> Any:
        option = get_help_option(ctx)
        return option if option is None else _tidy(option)

    return tidied
