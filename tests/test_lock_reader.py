"""The one reader of requirement files (lockfile.logical_lines) against pip's own (pip 26.3's req_file.preprocess,
run here in the ve): the same logical lines, with the same first line numbers, for every odd text below; and the
lock reader's pins against what pip's parser makes of a whole lock."""

import os

import pytest
from packaging.requirements import Requirement
from pip._internal.network.session import PipSession
from pip._internal.req.req_file import parse_requirements, preprocess

from bootstrap_build import lockfile
from bootstrap_tools import requirements_in

HASH = "--hash=sha256:" + "a" * 64

TEXTS = [
    "alpha==1.0\n",
    "alpha==1.0\nbeta==2.0\n",
    "alpha==1.0 \\\n    --hash=sha256:" + "a" * 64 + "\n",
    "alpha==1.0 \\  \nbeta==2.0\n",  # a backslash and then spaces: no continuation
    "alpha==1.0\\\\\nbeta\n",  # two backslashes: still a continuation, both removed
    "# reviewed \\\nevil==1.0\n",  # a comment line never continues
    "alpha  # keep it \\\nbeta\n",  # a requirement's trailing comment does, and swallows the next line
    "alpha\t# a tab before the comment\n",
    "alpha#not-a-comment\n",
    "alpha #comment\n",
    "   # indented comment\nalpha\n",
    "\n\n\nalpha\n\n",
    "alpha \\\n\\\nbeta\n",  # a line of only a backslash
    "alpha \\\n",  # the last line continues into nothing
    "alpha \\\n# a comment after a continuation\nbeta\n",
    "alpha ; python_version < \"3.11\" \\\n    " + HASH + "\n",
    "alpha ; platform_version == \"a  b\"\n",  # white space inside a quoted string is kept
    "alpha==1.0 ; extra == 'x'\n",
    "alpha==1.0\r\nbeta==2.0\r\n",
    "alpha==1.0\rbeta==2.0\n",
    "alpha \\\r\n    beta\n",
    "alpha\x0cbeta\n",  # a form feed splits lines, as str.splitlines does
    "alpha ${UNSET_VARIABLE_FOR_THIS_TEST}\n",
    "-r other.txt\nalpha\n",
    "--index-url http://example.invalid/simple \\\n  alpha\n",
    "#\n# header\n#\n",
    "alpha \\\n  \\\n  beta  # the end\n",
    "\\\nalpha\n",  # a line of a backslash first
    "alpha==1.0 \\ \\\nbeta\n",
    "alpha   \n   beta   \n",
    "a#b #c\n",
    "# only \\\n# comments \\\n",
    "alpha \\\n  --hash=sha256:" + "b" * 64 + " \\\n  # via beta\n",
]


@pytest.mark.parametrize("text", TEXTS)
def test_the_one_reader_reads_every_line_as_pip_does(text, monkeypatch):
    monkeypatch.delenv("UNSET_VARIABLE_FOR_THIS_TEST", raising=False)
    ours = [(first, line) for first, _, line in lockfile.logical_lines(text)]
    assert ours == list(preprocess(text)), repr(text)


def test_the_table_is_long_enough():
    assert len(TEXTS) >= 30


LOCK = (
    "# a lock\n"
    f"alpha==1.0 \\\n    {HASH}\n"
    f"beta[x,y]==2.0 ; python_version < \"3.99\" \\\n    {HASH} \\\n    --hash=sha256:{'b' * 64}\n"
    "    # via alpha\n"
    f"gamma==3.0 {HASH}  # trailing comment\n"
)


def test_the_lock_reader_and_pips_parser_make_the_same_pins(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text(LOCK)
    ours, bad = lockfile.parse_lock(LOCK)
    assert bad == []
    theirs = list(parse_requirements(str(path), session=PipSession()))
    assert [str(Requirement(pin.line)) for pin in ours] == [str(Requirement(parsed.requirement)) for parsed in theirs]
    assert [sorted(pin.hashes) for pin in ours] == [sorted(parsed.options["hashes"]["sha256"]) for parsed in theirs]


@pytest.mark.parametrize("text,reason", [
    (f"alpha==1.0 ; python_version < \"${{PY}}\" {HASH}\n", "`$`"),
    (f"alpha==1.0 ; ((( {HASH}\n", "grammar"),
    (f"alpha==1.0 ; python_version < \"3\" and {HASH}\n", "grammar"),
    (f"# reviewed \\\nalpha==1.0 {HASH}\n", "comment that ends in a backslash"),
])
def test_the_lock_reader_refuses_what_pip_would_read_another_way_or_fail_on_late(text, reason):
    _, bad = lockfile.parse_lock(text)
    assert any(reason in why for _, why in bad), bad


def test_requirements_in_accepts_a_tab_before_a_comment_and_refuses_a_variable(tmp_path):
    path = tmp_path / "requirements.in"
    path.write_text("alpha\t# pinned by hand\nbeta>=${MIN_BETA}\n")
    requirements, problems = requirements_in.read(path)
    assert [line for _, line, _ in requirements] == ["alpha"]
    assert len(problems) == 1 and "line 2" in problems[0] and "`$`" in problems[0], problems
    assert os.environ.get("MIN_BETA") is None


def test_make_check_names_a_lock_pip_reads_otherwise(tmp_path):
    from bootstrap_tools import check, lockfile

    path = tmp_path / "requirements.txt"
    path.write_text(LOCK)
    pins, _ = lockfile.parse(LOCK)
    assert check.pip_reader_problems(path, pins) == []
    problems = check.pip_reader_problems(path, pins[:-1])  # as if our reader had missed gamma
    assert len(problems) == 1 and "pip reads requirements.txt otherwise" in problems[0] and "gamma" in problems[0]
