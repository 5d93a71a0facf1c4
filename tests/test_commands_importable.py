"""Every CLI command is a module-level function of the module named after it (#21 item 7)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from lmcoverage.cli import app

#: Command names that are not valid module names.
MODULE_OF = {"import": "imports"}


def _commands() -> list[tuple[str | None, Callable[..., Any] | None]]:
    """``(command or group name, callback)`` of every command, sub-commands under their group."""
    found = [(info.name, info.callback) for info in app.registered_commands]
    for group in app.registered_groups:
        found += [(group.name, info.callback)
                  for info in group.typer_instance.registered_commands]
    return found


def test_each_command_lives_at_module_level_in_its_own_module() -> None:
    commands = _commands()
    assert {name for name, _ in commands} >= {"score", "train", "run", "demo", "task", "import"}
    for name, callback in commands:
        assert name is not None and callback is not None
        module = importlib.import_module(f"lmcoverage.commands.{MODULE_OF.get(name, name)}")
        assert callback.__module__ == module.__name__, (name, callback.__module__)
        assert "<locals>" not in callback.__qualname__, (name, callback.__qualname__)
        assert getattr(module, callback.__name__) is callback, name
