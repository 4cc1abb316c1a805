"""The README and docs/ as a user reads them: a short front door, no paths of the development machine, and every
`seq2text ...` command line in their shell blocks naming a subcommand and options that exist (each subcommand's
`--help` is asked once)."""

from __future__ import annotations

import functools
import io
import re
import shlex
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from seq2text.cli import main
from tests.conftest import REPO

README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
SHELL_FENCES = ("bash", "sh", "")  # ```bash, ```sh and a bare ```
NESTED = {"tokenizer"}  # subcommands whose options belong to their own subcommand (`tokenizer train`)


def _shell_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of each command in the page's shell blocks, continued lines (`\\`) joined."""
    found, fence, pending, start = [], None, "", 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        opening = re.match(r"^\s*```\s*(\S*)", raw)
        if opening:
            fence = opening.group(1) if fence is None else None
            pending = ""
            continue
        if fence is None or fence not in SHELL_FENCES:
            continue
        if not pending:
            start = number
        stripped = raw.strip()
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        found.append((start, pending + stripped))
        pending = ""
    return found


def _command_part(line: str) -> str:
    """The line up to its first unquoted redirection, pipe or comment."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "<>|" or (char == "#" and (i == 0 or line[i - 1].isspace())):
            return line[:i]
    return line


def _seq2text_commands() -> list[tuple[str, list[str]]]:
    commands = []
    for path in PAGES:
        for number, line in _shell_lines(path):
            if line.startswith("seq2text "):
                commands.append((f"{path.relative_to(REPO)}:{number}", shlex.split(_command_part(line))[1:]))
    return commands


COMMANDS = _seq2text_commands()


@functools.cache
def _help(subcommand: tuple[str, ...]) -> str:
    """`seq2text SUBCOMMAND --help`'s text; fails unless it exits with 0 (an unknown subcommand exits with 2)."""
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()), pytest.raises(SystemExit) as done:
        main([*subcommand, "--help"])
    assert done.value.code in (0, None), f"seq2text {' '.join(subcommand)} --help exited with {done.value.code}"
    return out.getvalue()


def _options(words: list[str]) -> list[str]:
    """The `--option` words of a command, `=value` stripped, `[optional]` brackets removed, dotted recipe keys
    (`--data.*`, `--model.*`, `--trainer.*`) left out."""
    names = []
    for word in words:
        word = word.strip("[]")
        name = word.split("=", 1)[0]
        if name.startswith("--") and len(name) > 2 and "." not in name:
            names.append(name)
    return names


def test_readme_is_a_front_door() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move a deep dive into docs/"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_pages_have_short_lines_and_no_development_paths(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert "../shared" not in text, f"{path.name}: write dataset paths as $SEQ2TEXT_DATA/..."
    long = [n for n, line in enumerate(text.splitlines(), 1) if len(line) > 200]
    assert not long, f"{path.name}: lines over 200 characters: {long}"


def test_the_pages_show_commands() -> None:
    assert len(COMMANDS) >= 20, f"only {len(COMMANDS)} seq2text command lines found in README.md and docs/"


@pytest.mark.parametrize(("where", "words"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_command_line_uses_existing_options(where: str, words: list[str]) -> None:
    assert words, f"{where}: `seq2text` without a subcommand"
    subcommand = tuple(words[:2]) if words[0] in NESTED else tuple(words[:1])
    text = _help(subcommand)
    missing = [name for name in _options(words[len(subcommand):])
               if not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text)]
    assert not missing, f"{where}: `seq2text {' '.join(subcommand)}` has no option {', '.join(missing)}"
