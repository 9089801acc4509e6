"""The project's contract: README commands, CI entry point, pins, CLI."""

from __future__ import annotations

import re
import subprocess
import sys

from oncorepro.cli import build_parser
from oncorepro.paths import REPO_ROOT


def _pins(text: str) -> set[str]:
    return {line.strip().lstrip("- ").strip() for line in text.splitlines()
            if re.match(r"^\s*-?\s*[A-Za-z0-9_.\-]+==", line)}


def test_environment_yml_mirrors_requirements():
    requirements = _pins((REPO_ROOT / "requirements.txt").read_text())
    environment = _pins((REPO_ROOT / "environment.yml").read_text())
    assert requirements and requirements == environment


def test_readme_commands_and_ci_agree():
    readme = (REPO_ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()


def test_cli_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "oncorepro.cli", "--help"], capture_output=True, text=True, check=True)
    assert "data" in out.stdout and "chapter" in out.stdout


def test_cli_parses_chapter_run():
    args = build_parser().parse_args(["chapter", "run", "notebooks/x.ipynb", "--profile", "full", "--seeds", "0,1"])
    assert args.profile == "full" and args.seeds == "0,1"
