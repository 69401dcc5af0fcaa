"""Every `python -m core` command is documented in the README (a command nobody can find does not exist)."""

from __future__ import annotations

import argparse

from core.__main__ import build_parser
from core.config import ROOT


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every leaf command of the argparse tree, as its words after `python -m core`."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [prefix]
    paths: list[tuple[str, ...]] = []
    for action in subs:
        for name, child in action.choices.items():
            paths.extend(command_paths(child, (*prefix, name)))
    return paths


def test_the_parser_tree_is_walked_to_its_leaves():
    """The walk finds nested commands, so the documentation check below has something to check."""
    paths = command_paths(build_parser())
    assert ("db", "migrate") in paths
    assert ("errors", "export") in paths and ("demo", "seed-errors") in paths


def test_every_command_appears_in_the_readme():
    """Each leaf command appears in README.md as `python -m core <words>`."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [" ".join(p) for p in command_paths(build_parser()) if f"python -m core {' '.join(p)}" not in readme]
    assert missing == [], f"commands missing from README.md's Command line section: {missing}"
