"""The README's "Declaring a new entity", read by the conventions that section keeps.

The section starts with ``## Declaring a new entity`` and ends at the next ``## `` heading. Every
```` ```python```` block whose first line is ``# <relative path>`` is a new file with that content;
every ```` ```sh```` block holds commands, one a line (``#`` comments and blank lines skipped, a
trailing backslash continues a line). Nothing else in the section is read, so its prose can change
freely.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from tests.migrations.helpers import REPO

README = REPO / "README.md"
SECTION = "## Declaring a new entity"
_BLOCK = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", flags=re.S | re.M)
_PATH_LINE = re.compile(r"#\s*(\S+)\s*")
_SHELLS = {"sh", "bash", "shell", "console"}


@dataclass(frozen=True)
class Recipe:
    """The new files (relative path -> content) and the commands, in the order the section gives them."""

    files: dict[str, str]
    commands: tuple[str, ...]


def section(text: str) -> str:
    """The new-entity section of a README's text."""
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start:] if end == -1 else text[start:end]


def read_recipe(text: str | None = None) -> Recipe:
    """The recipe of the README (or of ``text``); ``ValueError`` for a file path that is not a plain
    relative path."""
    files: dict[str, str] = {}
    commands: list[str] = []
    readme = README.read_text(encoding="utf-8") if text is None else text
    for language, body in _BLOCK.findall(section(readme)):
        if language == "python":
            first_line = body.split("\n", 1)[0]
            match = _PATH_LINE.fullmatch(first_line)
            if match is None:
                continue  # an example, not a file
            path = PurePosixPath(match[1])
            if path.is_absolute() or ".." in path.parts:
                raise ValueError(f"the recipe writes outside the project: {path}")
            if str(path) in files:
                raise ValueError(f"the recipe writes {path} twice")
            files[str(path)] = body
        elif language in _SHELLS:
            commands.extend(_commands(body))
    return Recipe(files, tuple(commands))


def _commands(body: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", body)
    lines = (line.strip().removeprefix("$ ") for line in joined.splitlines())
    return [line for line in lines if line and not line.startswith("#")]
