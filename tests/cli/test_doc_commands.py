"""Every ``hpo ...`` command the README and docs/*.md show parses with the real argument parser.

Commands are collected from fenced code blocks (shell or plain; ``\\`` continuation lines joined, ``$ `` and
``# `` prompts dropped, output lines skipped because their first word is not ``hpo``) and from inline code
spans that start with ``hpo ``. A line with shell operators (``|``, ``&&``, ``;``, ``>``, ``$(...)``) is split
at them and only the hpo part is parsed; a quoted argument that is itself a command line (``ssh host "..."``)
is searched too. Placeholders in capitals (``STUDY``, ``FILE``, ``URL``, ``N``) stand as they are, or as a
number where the option takes one. A span that names a command without arguments (`` `hpo run` ``) only has
to name one that exists. Also: the README stays short, names both make targets on its first screen, and
links every docs page.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from hpo.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 220
FIRST_SCREEN_LINES = 25

SHELL_FENCES = {"", "bash", "sh", "shell", "console", "zsh", "text"}
"""Fenced blocks searched for commands; toml, python and the like are not."""
OPERATORS = {"|", "||", "&&", ";", "&", "|&"}
REDIRECTS = re.compile(r"^\d*(>>?|<|>&|&>)")
WRAPPERS = {"nohup", "time", "exec", "env", "command", "srun"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z][A-Z0-9_]*)*$")
COMMAND_SUBSTITUTION = re.compile(r"\$\(([^()]*)\)")
PYTHON = re.compile(r"^(\S*/)?python[0-9.]*$")


@dataclass(frozen=True)
class DocCommand:
    file: str
    line: int
    text: str
    """What the doc shows (joined continuation lines, or the span)."""
    argv: tuple[str, ...]
    """The arguments after ``hpo``."""
    name_only: bool = False
    """An inline span that only names a command (`` `hpo run` ``): the command must exist."""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


# --- collecting ---------------------------------------------------------------------------------------------


def _hpo_arguments(tokens: list[str]) -> list[list[str]]:
    """The argument lists of every hpo call in one tokenised shell line."""
    found: list[list[str]] = []
    segments: list[list[str]] = []
    segment: list[str] = []
    skip_next = False
    for token in tokens:
        if skip_next:
            skip_next = False
            continue
        if token in OPERATORS:
            segments.append(segment)
            segment = []
        elif REDIRECTS.match(token):
            # `> file` takes the next token; `>file`, `2>&1` are whole
            skip_next = token in {">", ">>", "<", "2>", "&>", "1>"}
        else:
            segment.append(token)
    segments.append(segment)
    for words in segments:
        for word in words:  # a quoted command line inside: ssh host "cd x && hpo worker ..."
            if " " in word and re.search(r"(^|[\s/;&|])hpo\s", word):
                found.extend(_hpo_arguments(_tokens(word)))
        while words and (ASSIGNMENT.match(words[0]) or words[0] in WRAPPERS):
            words = words[1:]
        if not words:
            continue
        if words[0] == "hpo" or words[0].endswith("/hpo"):
            found.append(words[1:])
        elif PYTHON.match(words[0]) and len(words) > 2 and words[1] == "-m" and words[2] in {"hpo", "hpo.cli"}:
            found.append(words[3:])
    return found


def _tokens(line: str) -> list[str]:
    """shlex tokens, the trailing comment dropped, a ``;`` glued to a word split off."""
    tokens: list[str] = []
    for token in shlex.split(line, comments=True):
        if token.endswith(";") and token != ";":
            tokens.extend([token[:-1], ";"])
        else:
            tokens.append(token)
    return tokens


def _expand_substitutions(line: str) -> tuple[str, list[str]]:
    """``$(...)`` contents as separate lines; the substitution itself becomes a plain word."""
    inner = COMMAND_SUBSTITUTION.findall(line)
    return COMMAND_SUBSTITUTION.sub("SUBSTITUTED", line), inner


def _is_message(argv: list[str]) -> bool:
    """``hpo data: error: ...``, ``hpo worker: error: ...``: an error message, not a command."""
    return bool(argv) and argv[0].endswith(":")


def _shell_commands(path: str, number: int, line: str) -> list[DocCommand]:
    line = line.strip()
    for prompt in ("$ ", "# "):
        line = line.removeprefix(prompt)
    if not re.search(r"\bhpo\b", line):
        return []
    line, inner = _expand_substitutions(line)
    commands = []
    for text in [line, *inner]:
        try:
            tokens = _tokens(text)
        except ValueError:  # unbalanced quotes: prose or output, unless it starts like a command
            if re.match(r"^(\S*/)?hpo\s", text):
                raise AssertionError(f"{path}:{number}: cannot split {text!r} like a shell would")
            continue
        for argv in _hpo_arguments(tokens):
            if not _is_message(argv):
                commands.append(DocCommand(path, number, line, tuple(argv)))
    return commands


def _fenced_lines(lines: list[str]) -> tuple[list[tuple[int, str]], set[int]]:
    """(line number, logical line) of shell-like fenced blocks, and every line number inside any fence."""
    logical: list[tuple[int, str]] = []
    fenced: set[int] = set()
    fence: str | None = None
    language = ""
    pending: tuple[int, str] | None = None
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        marker = re.match(r"^(`{3,}|~{3,})\s*([\w+-]*)", stripped)
        if fence is None and marker:
            fence, language = marker.group(1), marker.group(2).lower()
            fenced.add(number)
            continue
        if fence is not None and stripped.startswith(fence) and stripped.strip(fence[0]) == "":
            fence = None
            fenced.add(number)
            if pending:
                logical.append(pending)
                pending = None
            continue
        if fence is None:
            continue
        fenced.add(number)
        if language not in SHELL_FENCES:
            continue
        if pending:
            start, text = pending
            text = f"{text} {stripped}"
        else:
            start, text = number, raw
        if text.rstrip().endswith("\\") and not text.rstrip().endswith("\\\\"):
            pending = (start, text.rstrip()[:-1])
        else:
            pending = None
            logical.append((start, text))
    return logical, fenced


def _inline_spans(lines: list[str], fenced: set[int]) -> list[tuple[int, str]]:
    """(line number, content) of every inline code span outside fences (spans may wrap lines)."""
    text_lines = ["" if number in fenced else line for number, line in enumerate(lines, start=1)]
    text = "\n".join(text_lines)
    starts = [0]
    for line in text_lines:
        starts.append(starts[-1] + len(line) + 1)
    spans = []
    position = 0
    while True:
        opening = re.compile(r"(?<!`)(`+)(?!`)").search(text, position)
        if opening is None:
            break
        ticks = opening.group(1)
        closing = re.compile(rf"(?<!`){ticks}(?!`)").search(text, opening.end())
        if closing is None:
            position = opening.end()
            continue
        content = text[opening.end():closing.start()].replace("\n", " ")
        if content.startswith(" ") and content.endswith(" ") and content.strip():
            content = content[1:-1]
        line_number = next(i for i, start in enumerate(starts) if start > opening.start())
        spans.append((line_number, content))
        position = closing.end()
    return spans


def collect_commands(path: str, markdown: str) -> list[DocCommand]:
    """Every hpo command line a Markdown text shows, with where it is."""
    lines = markdown.splitlines()
    logical, fenced = _fenced_lines(lines)
    commands: list[DocCommand] = []
    for number, line in logical:
        commands.extend(_shell_commands(path, number, line))
    for number, content in _inline_spans(lines, fenced):
        if not content.startswith("hpo ") and content != "hpo":
            continue
        found = _shell_commands(path, number, content)
        for command in found:
            names = _command_names(command.argv)
            if names is not None:
                command = DocCommand(command.file, command.line, command.text, command.argv, name_only=True)
            commands.append(command)
    return commands


def _doc_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def _all_commands() -> list[DocCommand]:
    commands = []
    for path in _doc_files():
        commands.extend(collect_commands(str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")))
    return commands


# --- parsing ------------------------------------------------------------------------------------------------


def _strict_parser() -> argparse.ArgumentParser:
    """The real parser, with abbreviated long options refused (a doc must spell a flag out)."""
    parser = build_parser()
    stack = [parser]
    while stack:
        current = stack.pop()
        current.allow_abbrev = False
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
    return parser


def _subcommand_tree(parser: argparse.ArgumentParser) -> dict:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {name: _subcommand_tree(sub) for name, sub in action.choices.items()}
    return {}


def _command_names(argv: tuple[str, ...]) -> list[str] | None:
    """``("data", "prepare")`` -> the names, when argv holds nothing but (sub)command names.

    A bare `` `hpo` `` or `` `hpo ...` `` (any command) counts as a name too.
    """
    if argv in {(), ("...",)}:
        return []
    tree = _subcommand_tree(build_parser())
    for word in argv:
        if word not in tree:
            return None
        tree = tree[word]
    return list(argv)


def parse_error(argv: tuple[str, ...]) -> str | None:
    """None when argv parses; else argparse's error.

    Placeholders stand as shown, or as ``1`` where the option takes a number (``N``, ``K``, ``$VAR``);
    a placeholder in the command's place (``hpo COMMAND --help``) may be any command.
    """
    attempts = [list(argv), [_as_number(word) for word in argv]]
    first = next((i for i, word in enumerate(argv) if not word.startswith("-")), None)
    if first is not None and PLACEHOLDER.match(argv[first]):
        attempts = [
            [*attempt[:first], name, *attempt[first + 1:]]
            for name in _subcommand_tree(build_parser()) for attempt in attempts
        ]
    error = ""
    for attempt in attempts:
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                _strict_parser().parse_args(attempt)
            return None
        except SystemExit as stop:
            if stop.code == 0:  # --help
                return None
            error = stderr.getvalue().strip().splitlines()[-1]
    return error


def _as_number(word: str) -> str:
    """A placeholder (``N``, ``--x=N``) or shell variable (``$SLURM_CPUS_PER_TASK``) as ``1``."""
    if PLACEHOLDER.match(word) or re.match(r"^\$\{?\w+\}?$", word):
        return "1"
    key, sep, value = word.partition("=")
    return f"{key}=1" if sep and key.startswith("--") and PLACEHOLDER.match(value) else word


# --- the tests ----------------------------------------------------------------------------------------------

COMMANDS = _all_commands()


@pytest.mark.parametrize("command", COMMANDS, ids=[command.where for command in COMMANDS])
def test_doc_command_parses(command: DocCommand) -> None:
    if command.name_only:
        assert _command_names(command.argv) is not None
        return
    error = parse_error(command.argv)
    assert error is None, f"{command.where}: `hpo {' '.join(command.argv)}` does not parse: {error}\n  shown as: {command.text.strip()}"


def test_docs_show_every_command() -> None:
    """The collector found commands at all, and the README names every subcommand."""
    readme = [command.argv[0] for command in COMMANDS if command.file == "README.md" and command.argv]
    assert set(readme) >= set(_subcommand_tree(build_parser())), "README.md misses a command"
    assert len(COMMANDS) > 50


def test_readme_is_short_and_starts_with_the_two_commands() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines, at most {README_MAX_LINES}"
    first_screen = "\n".join(lines[:FIRST_SCREEN_LINES])
    assert "make demo" in first_screen
    assert "make test" in first_screen


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = README.read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\((docs/[^)#\s]+)", readme))
    pages = {f"docs/{page.name}" for page in DOCS.glob("*.md")}
    assert pages, "no docs/*.md pages"
    assert not pages - linked, f"not linked from README.md: {sorted(pages - linked)}"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    anchors: set[str] = set()
    in_fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("```"):
            in_fence = not in_fence
        elif not in_fence and line.startswith("#"):
            slug = _slug(line.lstrip("#"))
            unique, count = slug, 0
            while unique in anchors:
                count += 1
                unique = f"{slug}-{count}"
            anchors.add(unique)
    return anchors


@pytest.mark.parametrize("path", _doc_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_local_links_resolve(path: Path) -> None:
    """Links to files in the repository and to headings (#anchor) point at something that exists."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in _anchors(linked)):
            broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)}: broken links {broken}"


def test_docs_pages_start_with_a_summary() -> None:
    """Each page: a title, then a one-line summary; pages over 80 lines have a contents line."""
    for page in sorted(DOCS.glob("*.md")):
        lines = page.read_text(encoding="utf-8").splitlines() + ["", "", ""]
        assert lines[0].startswith("# "), page.name
        assert lines[1] == "" and lines[2].strip() and lines[3] == "", f"{page.name}: no one-line summary"
        if len(lines) > 80:
            assert any(line.startswith("Contents:") for line in lines[:15]), f"{page.name}: no contents"


# --- the checker itself -------------------------------------------------------------------------------------


def _parse_all(markdown: str) -> dict[int, str | None]:
    return {command.line: parse_error(command.argv) for command in collect_commands("x.md", markdown)}


def test_checker_catches_a_flag_that_does_not_exist() -> None:
    markdown = "\n".join([
        "```bash",
        "hpo run studies/demo.toml --workers 2",
        "hpo run studies/demo.toml --no-such-flag",
        "```",
        "Or `hpo show STUDY --topk 3` inline.",
    ])
    errors = _parse_all(markdown)
    assert errors[2] is None
    assert "--no-such-flag" in errors[3]
    assert "--topk" in errors[5]


def test_checker_refuses_abbreviated_flags() -> None:
    assert parse_error(("run", "studies/demo.toml", "--n-trial", "3")) is not None
    assert parse_error(("run", "studies/demo.toml", "--n-trials", "3")) is None


def test_checker_reads_shell_lines_like_a_shell() -> None:
    markdown = "\n".join([
        "```bash",
        "$ hpo compare --function sphere \\",
        "    --seeds 3        # a comment with an apostrophe's",
        "HPO_LOCK_URL=postgresql://x nohup .venv/bin/hpo worker FILE --threads N > log 2>&1 &",
        "hpo studies | grep demo && hpo show demo -k 3",
        "ssh node \"cd x && hpo worker studies/a.toml --bogus\"",
        "python -m hpo.cli worker studies/a.toml",
        "echo $(hpo studies --nope)",
        "```",
        "```",
        "browse:  hpo dashboard --made-up   (output lines are not commands)",
        "hpo data: error: data/x.csv: non-numeric value",
        "```",
        "```toml",
        "hpo = \"not a command\"",
        "```",
        "Prose: `hpo run` and `hpo data prepare` name commands; `hpo nope` does not.",
    ])
    commands = collect_commands("x.md", markdown)
    shown = [(command.line, command.argv) for command in commands]
    assert (2, ("compare", "--function", "sphere", "--seeds", "3")) in shown
    assert (4, ("worker", "FILE", "--threads", "N")) in shown
    assert (5, ("studies",)) in shown and (5, ("show", "demo", "-k", "3")) in shown
    assert (6, ("worker", "studies/a.toml", "--bogus")) in shown
    assert (7, ("worker", "studies/a.toml")) in shown
    assert (8, ("studies", "--nope")) in shown
    assert not [line for line, _ in shown if line in (11, 12, 15)]
    prose = [(command.argv, command.name_only) for command in commands if command.line == 17]
    assert prose == [(("run",), True), (("data", "prepare"), True), (("nope",), False)]
    errors = {command.argv: parse_error(command.argv) for command in commands if not command.name_only}
    assert errors[("worker", "FILE", "--threads", "N")] is None
    assert errors[("worker", "studies/a.toml", "--bogus")] is not None
    assert errors[("studies", "--nope")] is not None
    assert errors[("nope",)] is not None
