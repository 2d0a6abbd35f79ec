"""The README, run: its examples, in order, against the server `make serve` starts.

Every fenced block of README.md is an example. Shell blocks (```sh) run through bash and
must exit 0 and print JSON; GraphQL blocks are POSTed to /graphql; Python blocks run with
this interpreter and must log no error. Each JSON answer must hold no `errors`, no empty
list and no null root field: an example that shows nothing teaches nothing. The README's
host (127.0.0.1:8000) becomes the test server's; nothing else is changed. Markers in an
HTML comment right before a block change that:

    <!-- readme-test: skip (why it cannot run here) -->
    <!-- readme-test: text (why its output is not JSON) -->   it must still exit 0
    <!-- readme-test: includes {"userId": "42"} -->           some object of the answer
                                                             holds these keys and values
    <!-- readme-test: errors {"code": "INVALID_TIMESTAMP"} --> the answer shows such an
                                                             error, and no other
A block with another language, or none, must be marked `skip`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PostgresTemplates, _fresh_database
from tests.demo_server import DemoServer, makefile_demo

README = Path(__file__).resolve().parents[1] / "README.md"
README_HOST = "127.0.0.1:8000"
RUNNERS = {
    "sh": "shell",
    "bash": "shell",
    "shell": "shell",
    "graphql": "graphql",
    "python": "python",
}
MARKER = re.compile(r"^<!--\s*readme-test:\s*(?P<kind>\S+)\s*(?P<argument>.*?)\s*-->$")
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)\s*(?P<language>[^\s`]*)")
TIMEOUT = 300  # seconds for one example; generous, as the machine may be loaded
# Bash runs the shell examples with this first: a curl answering HTTP 4xx/5xx fails the block.
SHELL_PRELUDE = 'curl() { command curl --fail-with-body --max-time 120 "$@"; }\n'
# Python examples run under this: an error logged (as the Segment SDK logs a failed
# upload) fails the example, as an exception does.
PYTHON_HARNESS = """
import logging, runpy, sys
logged = []
class Failures(logging.Handler):
    def emit(self, record):
        logged.append(self.format(record))
logging.getLogger().addHandler(Failures(logging.ERROR))
runpy.run_path(sys.argv[1], run_name="__main__")
if logged:
    sys.exit("errors logged:\\n" + "\\n".join(logged))
"""


@dataclass(frozen=True)
class Example:
    """One fenced block of the README and the markers right before it."""

    line: int  # of the opening fence, 1-based
    language: str
    text: str
    skip: str | None = None  # why it is not run
    text_output: bool = False
    includes: tuple[dict[str, Any], ...] = field(default=())
    errors: dict[str, Any] | None = None

    @property
    def runner(self) -> str | None:
        return RUNNERS.get(self.language)

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.language or 'no language'})"

    @property
    def id(self) -> str:
        return f"line{self.line}-{self.language or 'plain'}"


def parse(markdown: str) -> tuple[list[Example], list[str]]:
    """The README's fenced blocks, and the problems with its markers."""
    examples: list[Example] = []
    problems: list[str] = []
    markers: list[tuple[int, str, str]] = []
    lines = markdown.splitlines()
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        stripped = line.strip()
        marker = MARKER.match(stripped)
        if marker:
            markers.append((number, marker["kind"], marker["argument"]))
            continue
        fence = FENCE.match(line)
        if not fence:
            if stripped and markers:
                problems.append(f"line {markers[0][0]}: a readme-test marker not before a block")
                markers = []
            continue
        indent, close = len(fence["indent"]), fence["fence"]
        body: list[str] = []
        while number < len(lines) and lines[number].strip() != close:
            body.append(_dedent(lines[number], indent))
            number += 1
        if number == len(lines):
            problems.append(f"line {number}: a code block never closed")
        number += 1
        examples.append(
            _example(number - len(body) - 1, fence["language"], body, markers, problems)
        )
        markers = []
    if markers:
        problems.append(f"line {markers[0][0]}: a readme-test marker not before a block")
    return examples, problems


def _dedent(line: str, indent: int) -> str:
    """A block's line without the indentation of its fence (a list item's block)."""
    return line[indent:] if not line[:indent].strip() else line


def _example(
    line: int,
    language: str,
    body: list[str],
    markers: list[tuple[int, str, str]],
    problems: list[str],
) -> Example:
    skip, text_output, includes = None, False, []
    errors: dict[str, Any] | None = None
    for at, kind, argument in markers:
        if kind == "skip" and re.fullmatch(r"\(.+\)", argument):
            skip = argument[1:-1]
        elif kind == "text" and re.fullmatch(r"\(.+\)", argument):
            text_output = True
        elif kind in ("includes", "errors"):
            try:
                expected = json.loads(argument)
            except json.JSONDecodeError as error:
                problems.append(f"line {at}: {kind} needs a JSON object ({error})")
                continue
            if not isinstance(expected, dict) or not expected:
                problems.append(f"line {at}: {kind} needs a non-empty JSON object")
                continue
            if kind == "errors":
                errors = expected
            else:
                includes.append(expected)
        else:
            problems.append(
                f"line {at}: unknown marker {kind!r} {argument!r} "
                "(skip (why), text (why), includes {json}, errors {json})"
            )
    return Example(
        line, language, "\n".join(body) + "\n", skip, text_output, tuple(includes), errors
    )


EXAMPLES, MARKER_PROBLEMS = parse(README.read_text())


def test_every_block_is_run_or_marked_skip() -> None:
    assert not MARKER_PROBLEMS
    unmarked = [str(e) for e in EXAMPLES if e.runner is None and e.skip is None]
    assert not unmarked, (
        f"README blocks neither run nor marked `<!-- readme-test: skip (why) -->`: {unmarked}"
    )
    assert sum(e.skip is None for e in EXAMPLES) >= 5


def test_the_readme_states_the_demo_size_make_serve_loads() -> None:
    users, days = makefile_demo()
    text = " ".join(README.read_text().split())
    assert f"{users} people" in text and f"{days} days" in text


def test_the_parser_reads_markers_blocks_and_indentation() -> None:
    markdown = (
        "text\n\n<!-- readme-test: skip (needs a production database) -->\n"
        "```sh\nusertrail key list\n```\n\n- a list item:\n\n"
        '  <!-- readme-test: includes {"a": 1} -->\n  ```graphql\n  { users }\n  ```\n'
        "```json\n{}\n```\n<!-- readme-test: skip (nothing) -->\nprose\n"
        "<!-- readme-test: skipp (typo) -->\n```sh\ntrue\n```\n"
    )
    examples, problems = parse(markdown)
    assert [(e.line, e.language, e.text, e.skip) for e in examples] == [
        (4, "sh", "usertrail key list\n", "needs a production database"),
        (11, "graphql", "{ users }\n", None),
        (14, "json", "{}\n", None),
        (20, "sh", "true\n", None),
    ]
    assert examples[1].includes == ({"a": 1},)
    assert problems == [
        "line 17: a readme-test marker not before a block",
        "line 19: unknown marker 'skipp' '(typo)' "
        "(skip (why), text (why), includes {json}, errors {json})",
    ]


def _holds(found: Any, expected: dict[str, Any]) -> bool:
    return isinstance(found, dict) and all(found.get(k) == v for k, v in expected.items())


def answer_problems(
    answer: Any, path: str = "", expected_error: dict[str, Any] | None = None
) -> Iterator[str]:
    """Non-empty `errors` (but those like `expected_error`) and empty lists anywhere in a JSON
    answer, null root fields."""
    if not path and isinstance(answer, dict) and isinstance(answer.get("data"), dict):
        for name, value in answer["data"].items():
            if value is None:
                yield f".data.{name}: null"
    if isinstance(answer, dict):
        for key, value in answer.items():
            if key == "errors":
                if value and not (
                    expected_error is not None
                    and isinstance(value, list)
                    and all(_holds(item, expected_error) for item in value)
                ):
                    yield f"{path}.errors: {value}"
            else:
                yield from answer_problems(value, f"{path}.{key}", expected_error)
    elif isinstance(answer, list):
        if not answer:
            yield f"{path}: an empty list"
        for index, item in enumerate(answer):
            yield from answer_problems(item, f"{path}[{index}]", expected_error)


def objects(answer: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in an answer, outermost first."""
    if isinstance(answer, dict):
        yield answer
        for value in answer.values():
            yield from objects(value)
    elif isinstance(answer, list):
        for item in answer:
            yield from objects(item)


def json_documents(output: str) -> list[Any]:
    """The JSON values printed one after another (several curls print several)."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while (at := _skip_space(output, at)) < len(output):
        value, at = decoder.raw_decode(output, at)
        found.append(value)
    return found


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def test_answers_are_checked_for_errors_empty_lists_and_inclusions() -> None:
    good = {"data": {"trackBatch": {"errors": []}, "users": {"edges": [{"node": {"id": 1}}]}}}
    assert list(answer_problems(good)) == []
    assert list(answer_problems({"data": {"users": {"edges": []}}})) == [
        ".data.users.edges: an empty list"
    ]
    assert list(answer_problems({"data": None, "errors": [{"message": "no"}]})) == [
        ".errors: [{'message': 'no'}]"
    ]
    assert list(answer_problems({"data": {"user": None, "users": {"x": None}}})) == [
        ".data.user: null"
    ]
    refused = {"data": {"trackBatch": {"errors": [{"code": "X", "index": 1}]}}}
    assert list(answer_problems(refused, expected_error={"code": "X"})) == []
    assert list(answer_problems(refused, expected_error={"code": "Y"})) != []
    assert json_documents('{"a": 1}\n{"b": [2]}') == [{"a": 1}, {"b": [2]}]
    assert {"id": 1} in list(objects(good))


@pytest.fixture(scope="module")
async def demo_server(
    pg_templates: PostgresTemplates | None,
    sqlite_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[DemoServer]:
    """`usertrail serve --dev` over a new database, loading the Makefile's DEMO/DEMO_DAYS."""
    directory = tmp_path_factory.mktemp("readme")
    url = await _fresh_database(pg_templates, sqlite_template, directory)
    users, days = makefile_demo()
    server = DemoServer(url, directory, users=users, days=days)
    try:
        await server.start(timeout=600)
        yield server
    finally:
        await server.stop()


@pytest.mark.parametrize(
    "example", [e for e in EXAMPLES if e.skip is None and e.runner], ids=lambda e: e.id
)
def test_the_example_works_as_written(
    example: Example, demo_server: DemoServer, tmp_path: Path
) -> None:
    text = example.text.replace(README_HOST, f"127.0.0.1:{demo_server.port}")
    if example.runner == "shell":
        answers = _run_shell(example, text, tmp_path)
    elif example.runner == "python":
        answers = _run_python(text, tmp_path)
    else:
        response = httpx.post(f"{demo_server.url}/graphql", json={"query": text}, timeout=TIMEOUT)
        assert response.is_success, f"HTTP {response.status_code}: {response.text}"
        answers = [response.json()]
    for answer in answers:
        problems = list(answer_problems(answer, expected_error=example.errors))
        assert not problems, f"{example}:\n" + "\n".join(problems) + f"\nanswer: {answer}"
    for expected in (*example.includes, *([example.errors] if example.errors else [])):
        assert any(
            all(found.get(k) == v for k, v in expected.items())
            for answer in answers
            for found in objects(answer)
        ), f"{example}: no object with {expected} in {answers}"


def _environment() -> dict[str, str]:
    # The README's reader has no test settings: none of ours reach the examples.
    return {k: v for k, v in os.environ.items() if not k.startswith("USERTRAIL_")}


def _run_shell(example: Example, text: str, directory: Path) -> list[Any]:
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", SHELL_PRELUDE + text],
        capture_output=True,
        text=True,
        cwd=directory,
        env=_environment(),
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    if example.text_output:
        return []
    try:
        answers = json_documents(done.stdout)
    except json.JSONDecodeError as error:
        raise AssertionError(f"not JSON ({error}):\n{done.stdout}") from None
    assert answers, f"printed no JSON answer:\n{done.stdout}\n{done.stderr}"
    return answers


def _run_python(text: str, directory: Path) -> list[Any]:
    script = directory / "example.py"
    script.write_text(text)
    done = subprocess.run(
        [sys.executable, "-c", PYTHON_HARNESS, str(script)],
        capture_output=True,
        text=True,
        cwd=directory,
        env=_environment(),
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return []
