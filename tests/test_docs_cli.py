"""The docs and every ``--help`` agree with the ``certgate`` command itself.

Every ``certgate …`` line in the fenced blocks of ``README.md`` and ``docs/*.md``,
and every example in a command's ``--help`` epilog, is parsed by click exactly as
the shell would hand it over: it must name a real command, real options and the
arguments that command takes (``main`` would exit 2 on it otherwise). Inline
mentions (`` `certgate cert list --user U` ``) must name a real command and real
options. And every command and every option is mentioned somewhere in the docs.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from gateway.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Options every click command has; not worth a sentence in a guide.
STANDARD = {"--help", "-h", "--version"}


def commands(command: click.Command = cli, path: tuple[str, ...] = ()
             ) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command and group under ``certgate``, with its words."""
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, name)
            assert sub is not None, name
            yield from commands(sub, (*path, name))


def options(command: click.Command) -> set[str]:
    return {o for p in command.params if isinstance(p, click.Option)
            for o in (*p.opts, *p.secondary_opts)} | STANDARD


def shell_lines(text: str) -> Iterator[str]:
    """Each ``certgate …`` command of a block of shell, continuation lines joined."""
    for line in text.replace("\\\n", " ").splitlines():
        line = re.sub(r"^\s*\$\s+", "", line)
        start = line.find("certgate ")
        if start < 0 or not re.match(r"(\s*|.*(&&|;)\s*)$", line[:start]):
            continue  # prose, a path like /etc/certgate, or not a command at the start
        command = line[start:]
        # Stop at what the shell treats as the end of this command.
        command = re.split(r"\s(?:#|\||&&|;|>|2>)", command)[0]
        yield command.strip()


def doc_lines() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        # Every fenced block, whatever its language, so a yaml block's closing fence
        # is never taken for the opening of a shell block.
        for lang, block in re.findall(r"^```(\w*)\n(.*?)^```$", doc.read_text(),
                                      flags=re.M | re.S):
            if lang in ("", "sh", "bash", "console"):
                found += [(doc.name, line) for line in shell_lines(block)]
    return found


def epilog_lines() -> list[tuple[str, str]]:
    found = []
    for path, command in commands():
        if command.epilog:
            found += [(" ".join(("certgate", *path)), line)
                      for line in shell_lines(command.epilog)]
    return found


def words_of(line: str) -> list[str]:
    # `[--user alice]` in a synopsis is an optional part: parse it as given.
    return shlex.split(line.replace("[", " ").replace("]", " "))[1:]


def resolve(words: list[str]) -> tuple[tuple[str, ...], click.Command, list[str]]:
    """The command the words name (after the group's own --config FILE), and the rest."""
    command: click.Command = cli
    path: tuple[str, ...] = ()
    rest = list(words)
    while isinstance(command, click.Group) and rest:
        if rest[0] == "--config":
            rest = rest[2:]
            continue
        sub = command.get_command(click.Context(command), rest[0])
        if sub is None:
            break
        command, path, rest = sub, (*path, rest[0]), rest[1:]
    return path, command, rest


def parse(line: str) -> None:
    """Parse the line as ``certgate`` would, raising click's UsageError."""
    path, command, rest = resolve(words_of(line))
    assert not isinstance(command, click.Group), \
        f"`{line}`: {' '.join(path) or 'certgate'} needs a command, not {rest[:1]}"
    command.make_context(" ".join(("certgate", *path)), rest)


@pytest.mark.parametrize(("where", "line"), doc_lines())
def test_every_command_line_in_the_docs_parses(where: str, line: str) -> None:
    try:
        parse(line)
    except click.UsageError as exc:
        pytest.fail(f"{where}: `{line}`: {exc.format_message()}")


@pytest.mark.parametrize(("where", "line"), epilog_lines())
def test_every_example_in_a_help_text_parses(where: str, line: str) -> None:
    try:
        parse(line)
    except click.UsageError as exc:
        pytest.fail(f"{where} --help: `{line}`: {exc.format_message()}")


def test_the_examples_are_found() -> None:
    """The two tests above see the lines they should (a broken regex passes vacuously)."""
    docs = [line for _, line in doc_lines()]
    assert "certgate cert issue alice --out alice.p12" in docs
    assert any(line.startswith("certgate policy explain --user alice --url") and "--at" in line
               for line in docs)  # a continued line is joined
    examples = epilog_lines()
    assert ("certgate", "certgate --config /var/lib/certgate/certgate.yaml serve") in examples
    assert ("certgate audit search",
            "certgate audit search --app pbx --type access --limit 1000 --json") in examples
    assert len(examples) > 40


def test_a_wrong_line_is_caught() -> None:
    """The checks can fail: a group option after the command, an unknown command."""
    with pytest.raises(click.UsageError):
        parse("certgate serve --config /var/lib/certgate/certgate.yaml")
    with pytest.raises(click.UsageError):
        parse("certgate cert list --user")
    with pytest.raises(AssertionError):
        parse("certgate cert frobnicate 5F3A")


def test_every_group_shows_examples() -> None:
    """README promises `certgate COMMAND --help` "for each, with examples"."""
    bare = [" ".join(path) for path, command in commands()
            if len(path) == 1 and "EXAMPLES" not in (command.epilog or "")]
    assert not bare, f"no EXAMPLES in --help of: {bare}"


def test_inline_mentions_name_real_commands_and_options() -> None:
    wrong = []
    for doc in DOCS:
        for line in re.findall(r"`(certgate [^`]+)`", doc.read_text()):
            try:
                words = words_of(re.split(r"\s(?:#|\||>)", line)[0])
            except ValueError:
                words = line.split()[1:]
            _, command, rest = resolve(words)
            if isinstance(command, click.Group) and rest and re.fullmatch(r"[a-z][a-z-]+", rest[0]):
                wrong.append(f"{doc.name}: `{line}`: no command {rest[0]!r}")
            unknown = {w.split("=")[0] for w in rest if w.startswith("--")} - options(command)
            if unknown:
                wrong.append(f"{doc.name}: `{line}`: no option {sorted(unknown)}")
    assert not wrong, "\n".join(wrong)


def test_every_command_and_option_is_in_the_docs() -> None:
    text = "\n".join(doc.read_text() for doc in DOCS)
    missing = []
    for path, command in commands():
        if path and f"certgate {' '.join(path)}" not in text and f"`{path[-1]}`" not in text:
            missing.append(" ".join(path))
        for option in options(command) - STANDARD:
            if option.startswith("--") and not re.search(re.escape(option) + r"\b", text):
                missing.append(f"{' '.join(path) or 'certgate'} {option}")
    assert not missing, f"not in README.md or docs/: {missing}"
