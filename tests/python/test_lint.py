"""The generated Python passes `ruff format --check` and `ruff check` as a consumer runs them,
with the ruff.toml specgen writes beside it."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import pulumi_projects, stack_id

projects = pytest.mark.parametrize("project", pulumi_projects(), ids=stack_id)


def ruff(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--no-cache", "."],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


@projects
def test_ruff_settings_are_beside_the_program(project: Path):
    assert (project / "ruff.toml").is_file(), "templates/pulumi/ruff.toml was not copied"


@projects
def test_ruff_format(project: Path):
    result = ruff("format", "--check", "--diff", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr


@projects
def test_ruff_check(project: Path):
    result = ruff("check", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
