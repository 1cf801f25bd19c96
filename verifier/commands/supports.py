"""`verifier supports --CAPABILITY`: the VNN-LIB standard's capability queries (answers in verifier.standard)."""
from __future__ import annotations

from typing import Any

import click

from verifier.commands.common import CONTEXT, guarded as _guarded
from verifier.standard import SUPPORTS


@click.command("supports", context_settings=CONTEXT, short_help="VNN-LIB standard: print one capability.")
def supports(**flags: bool) -> None:
    """Print what the verifier supports, one answer a line (VNN-LIB 2.0 standard `supports` command)."""
    chosen = [name.replace("_", "-") for name, on in flags.items() if on]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one capability, e.g. `verifier supports --onnx-operators`")
    from verifier.standard import supports as answer

    lines: Any = _guarded(lambda: answer(chosen[0]))
    for line in lines:
        click.echo(line)


for _capability, (_help, _answer) in reversed(list(SUPPORTS.items())):
    supports = click.option(f"--{_capability}", is_flag=True, help=_help)(supports)
