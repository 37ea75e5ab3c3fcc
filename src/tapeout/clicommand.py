"""Pieces of the typer front ends that need click: boolean flags that take a value, a progress bar on
stderr, and the console-script runner that keeps every error on one line."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperCommand

try:  # typer >= 0.2x carries its own copy of click; older releases use click itself
    from typer._click import exceptions as _clickex
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as _clickex  # type: ignore[no-redef]

UsageError = _clickex.UsageError
ClickException = _clickex.ClickException
NoArgsIsHelpError = getattr(_clickex, "NoArgsIsHelpError", None)

#: words a boolean option accepts as its value (``--fuse-residual-norm false``)
TRUE_WORDS = ("true", "yes", "on")
FALSE_WORDS = ("false", "no", "off")


def _bool_word(text: str, *, numbers: bool) -> bool | None:
    t = text.strip().lower()
    if t in TRUE_WORDS or (numbers and t == "1"):
        return True
    if t in FALSE_WORDS or (numbers and t == "0"):
        return False
    return None


class BoolValueCommand(TyperCommand):
    """A typer command whose boolean flags also take a value: ``--flag true``, ``--flag=no``.

    Help shows a boolean option's type, so users write a value; click's flags take none. Before parsing,
    ``--flag <bool>`` and ``--flag=<bool>`` become the flag or its ``--no-`` form (or nothing, for a flag
    without one, whose default is off); any other ``--flag=value`` is a one-line usage error."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, self._bool_values(args, ctx))

    def _bool_values(self, args: list[str], ctx: Any = None) -> list[str]:
        flags: dict[str, tuple[Any, bool]] = {}
        for p in self.params:
            if getattr(p, "is_flag", False) and getattr(p, "is_bool_flag", False):
                for o in p.opts:
                    flags[o] = (p, True)
                for o in p.secondary_opts:
                    flags[o] = (p, False)
        out: list[str] = []
        i = 0
        while i < len(args):
            a = args[i]
            if a == "--":
                out.extend(args[i:])
                break
            name, eq, raw = a.partition("=")
            if name not in flags:
                out.append(a)
                i += 1
                continue
            p, positive = flags[name]
            if eq:
                value = _bool_word(raw, numbers=True)
                if value is None:
                    raise UsageError(f"{name}: expected true or false, got {raw!r}", ctx=ctx)
            elif i + 1 < len(args) and _bool_word(args[i + 1], numbers=False) is not None:
                value = _bool_word(args[i + 1], numbers=False)
                i += 1
            else:
                out.append(a)
                i += 1
                continue
            want = value if positive else not value
            if want:
                out.append(p.opts[0])
            elif p.secondary_opts:
                out.append(p.secondary_opts[0])
            i += 1
        return out


def _option_type(annotation: Any) -> Any:
    """The command-line type of a field: int, float, bool, a path, else text (formats, choices, numbers or
    patterns that the model validates); Optional when the field may be None; None for a mapping (no option)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) < len(
        typing.get_args(annotation))
    core = args if typing.get_origin(annotation) in (typing.Union, types.UnionType) else [annotation]
    if all(typing.get_origin(a) is dict or a is dict for a in core):
        return None
    if core == [bool]:
        kind: Any = bool
    elif core == [int]:
        kind = int
    elif core == [float]:
        kind = float
    elif Path in core:
        kind = Path
    else:
        kind = str
    return Optional[kind] if optional else kind


def options_from(*models: Any, exclude: tuple[str, ...] = (), help: dict[str, str] | None = None,
                 flags: dict[str, str] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A typer command's options generated from pydantic models: the command's ``**kwargs`` become one option
    per field, the models in order (a model may come as ``(model, its exclusions)``; a name already taken is
    skipped): ``--input-len`` for ``input_len`` or ``flags[name]``, its type, default, and description as help,
    or ``help[name]``; a bool as ``--flag/--no-flag``. They are placed after the command's required
    parameters. Fields in ``exclude``, or holding only a mapping, get no option. The command receives them as
    keywords."""
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn, eval_str=True)  # typer reads a set __signature__ as it is
        own = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        taken = {p.name for p in own} | set(exclude)
        made = []
        for m in models:
            model, skip = m if isinstance(m, tuple) else (m, ())
            for name, f in model.model_fields.items():
                kind = _option_type(f.annotation)
                if name in taken or name in skip or kind is None:
                    continue
                taken.add(name)
                text = (help or {}).get(name, f.description)
                flag = (flags or {}).get(name, "--" + name.replace("_", "-"))
                opt = typer.Option(f"{flag}/--no-{flag[2:]}", help=text) if kind is bool else typer.Option(
                    flag, help=text)
                default = f.default
                if isinstance(default, tuple):  # a list option is text: 1,2,4
                    default = ",".join(map(str, default))
                made.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                              annotation=Annotated[kind, opt]))
        at = next((i for i, p in enumerate(own) if p.default is not inspect.Parameter.empty), len(own))
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        fn.__signature__ = sig.replace(parameters=params[:at] + made + params[at:])  # type: ignore[attr-defined]
        return fn
    return decorate


class RichProgress:
    """A progress bar with a rate and an ETA on stderr; where stderr is not a terminal (a log, CI), a plain
    line every tenth of the work instead."""

    def __init__(self, label: str, unit: str = "pts") -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.console = Console(stderr=True)
        self.live = self.console.is_terminal
        self.p = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"),
                          TimeRemainingColumn(), transient=False, console=self.console)
        self.label = label
        self.unit = unit
        self.task = None
        self.n = 0
        self.done = 0
        self.total = 0
        self.t0 = 0.0
        self.next_line = 0.0

    def start(self, total: int, done: int) -> None:
        import time

        self.t0 = time.perf_counter()
        self.total, self.done = total, done
        self.next_line = 0.1
        if self.live:
            self.p.start()
            self.task = self.p.add_task(self.label, total=total, completed=done, rate="")
        else:
            self.console.print(f"{self.label}: {done} of {total} {self.unit} done, starting", highlight=False)

    def advance(self, n: int = 1) -> None:
        import time

        self.n += n
        self.done += n
        dt = time.perf_counter() - self.t0
        rate = f"{60 * self.n / dt:,.0f} {self.unit}/min" if dt > 0 else ""
        if self.live:
            self.p.update(self.task, advance=n, rate=rate)
        elif self.total and self.done / self.total >= self.next_line:
            self.console.print(f"{self.label}: {self.done} of {self.total} {self.unit} ({rate}, {dt:.0f} s)",
                               highlight=False)
            while self.next_line <= self.done / self.total:
                self.next_line += 0.1

    def stop(self) -> None:
        if self.live:
            self.p.stop()


def run_app(app: Any, argv: list[str] | None = None, prog_name: str = "tapeout") -> int:
    """Run a typer app as a console script: usage errors and user errors as one line and status 2,
    ``--help`` and normal runs as usual; returns the exit status."""
    import os
    import sys

    from tapeout.errors import TapeoutError

    try:
        rv = app(args=argv, standalone_mode=False, prog_name=prog_name)
    except UsageError as exc:
        if NoArgsIsHelpError is not None and isinstance(exc, NoArgsIsHelpError):
            return run_app(app, ["--help"], prog_name)
        ctx = getattr(exc, "ctx", None)
        cmd = getattr(ctx, "command_path", None) or prog_name
        msg = " ".join(exc.format_message().split())
        typer.echo(f"error: {msg} (see {cmd} --help)", err=True)
        return 2
    except ClickException as exc:
        typer.echo(f"error: {' '.join(exc.format_message().split())}", err=True)
        return exc.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 1
    except TapeoutError as exc:  # safety net: no traceback for user errors
        typer.echo(f"error: {exc}", err=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
        if os.environ.get("TAPEOUT_DEBUG"):
            raise
        msg = str(exc).splitlines()[0] if str(exc) else ""
        typer.echo(f"error: internal error ({type(exc).__name__}: {msg}); please report it with the command "
                   "line (TAPEOUT_DEBUG=1 shows the traceback)", err=True)
        return 1
    sys.stdout.flush()
    return rv if isinstance(rv, int) else 0
