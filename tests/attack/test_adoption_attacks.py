"""Attacks on the adoption features: `init`, `doctor`, `up --no-wait` and action.yml.

Each test drives the installed console script (or the action's own `run:` scripts in
bash) against the loopback fakes, made hostile where the attack needs it (see
tests/attack/hostile.py), and asserts the outcome the contract promises.
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

import pytest
import yaml

from previewctl.ops.init import template_files
from tests.attack import hostile
from tests.attack.hostile import Ran

ROOT = Path(__file__).resolve().parents[2]
BUG = "a bug in previewctl"


def _tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def _init(tmp_path: Path, *args: str, preexec: Any = None) -> Ran:
    return hostile.run(["init", *args], hostile.base_env(tmp_path), tmp_path, preexec=preexec)


# ---- init -------------------------------------------------------------------------------


def test_init_with_a_file_where_a_directory_goes_writes_nothing(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".fly").parent.mkdir()
    (repo / ".fly").write_text("not a directory\n")
    result = _init(tmp_path, "--template", "postgres", str(repo))
    assert result.code == 2, result.output
    assert BUG not in result.output
    assert ".fly" in result.stderr
    assert _tree(repo) == [".fly"]


def test_init_below_a_file_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x\n")
    result = _init(tmp_path, str(tmp_path / "afile" / "repo"))
    assert result.code == 2, result.output
    assert BUG not in result.output
    assert (tmp_path / "afile").read_text() == "x\n"


def test_init_does_not_write_through_a_dangling_symlink(tmp_path: Path) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "outside.toml"
    repo.mkdir()
    (repo / "previewctl.toml").symlink_to(outside)
    result = _init(tmp_path, str(repo))
    assert result.code == 2, result.output
    assert not outside.exists()
    assert _tree(repo) == ["previewctl.toml"]
    forced = _init(tmp_path, "--force", str(repo))
    assert forced.code == 0, forced.output
    assert not outside.exists(), "--force replaces the link, not what it points to"
    assert not (repo / "previewctl.toml").is_symlink()


def test_init_does_not_write_outside_the_directory_through_a_symlinked_folder(
    tmp_path: Path,
) -> None:
    repo, outside = tmp_path / "repo", tmp_path / "elsewhere"
    repo.mkdir()
    outside.mkdir()
    (repo / ".fly").symlink_to(outside, target_is_directory=True)
    for extra in ([], ["--force"]):
        result = _init(tmp_path, *extra, str(repo))
        assert result.code == 2, result.output
        assert "outside" in result.stderr
        assert list(outside.iterdir()) == []
        assert _tree(repo) == [".fly"]


def test_init_into_a_symlinked_directory_writes_where_it_points(tmp_path: Path) -> None:
    target = tmp_path / "real"
    target.mkdir()
    (tmp_path / "link").symlink_to(target, target_is_directory=True)
    result = _init(tmp_path, "--template", "postgres", str(tmp_path / "link"))
    assert result.code == 0, result.output
    assert (target / "previewctl.toml").is_file()


def _limit_file_size(limit: int) -> Any:
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_init_that_fails_half_way_leaves_nothing_half_written(tmp_path: Path) -> None:
    """A full disk (a file size limit) in the middle of the writes: all or nothing."""
    sizes = {k: len(v.encode()) for k, v in template_files("postgres").items()}
    limit = max(sizes["previewctl.toml"], sizes[".fly/machine-config.json"]) + 1
    assert sizes[".github/workflows/preview.yml"] > limit  # the third file cannot be written
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README.md").write_text("mine\n")
    result = _init(tmp_path, "--template", "postgres", str(repo), preexec=_limit_file_size(limit))
    assert result.code == 1, result.output
    assert BUG not in result.output
    assert "nothing was written" in result.stderr
    assert _tree(repo) == ["README.md"]
    assert (repo / "README.md").read_text() == "mine\n"


def test_init_force_that_fails_half_way_keeps_the_old_files(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    assert _init(tmp_path, "--template", "agents", str(repo)).code == 0
    before = {p: (repo / p).read_bytes() for p in _tree(repo) if (repo / p).is_file()}
    sizes = {k: len(v.encode()) for k, v in template_files("postgres").items()}
    limit = max(sizes["previewctl.toml"], sizes[".fly/machine-config.json"]) + 1
    result = _init(
        tmp_path,
        "--force",
        "--template",
        "postgres",
        str(repo),
        preexec=_limit_file_size(limit),
    )
    assert result.code == 1, result.output
    after = {p: (repo / p).read_bytes() for p in _tree(repo) if (repo / p).is_file()}
    assert after == before


@pytest.mark.parametrize(
    "action",
    [
        "*a/b@c",
        "a/b@x:",
        "{a/b@c",
        "!a/b@c",
        "&a/b@c",
        "a/b@${{secrets.X}}",
        "'a/b@c'",
        "a/b@c\x7f",
    ],
)
def test_init_refuses_an_action_that_breaks_the_workflow_yaml(tmp_path: Path, action: str) -> None:
    result = _init(tmp_path, "--action", action, str(tmp_path / "repo"))
    assert result.code == 2, result.output
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize("action", ["acme/previewctl@v1", "acme/tools/previewctl@0123abcd"])
def test_init_writes_the_action_it_was_given_as_valid_yaml(tmp_path: Path, action: str) -> None:
    repo = tmp_path / "repo"
    assert _init(tmp_path, "--action", action, str(repo)).code == 0
    flow = yaml.safe_load((repo / ".github/workflows/preview.yml").read_text())
    uses = [s.get("uses") for s in flow["jobs"]["up"]["steps"]]
    assert action in uses


def test_init_some_files_present_writes_nothing_and_keeps_them(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".github/workflows").mkdir(parents=True)
    (repo / ".github/workflows/preview.yml").write_text("mine\n")
    result = _init(tmp_path, str(repo))
    assert result.code == 2, result.output
    assert _tree(repo) == [".github", ".github/workflows", ".github/workflows/preview.yml"]
    assert (repo / ".github/workflows/preview.yml").read_text() == "mine\n"


def test_init_unknown_template_writes_nothing(tmp_path: Path) -> None:
    result = _init(tmp_path, "--template", "nope", str(tmp_path / "repo"))
    assert result.code == 2, result.output
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize("template", ["agents", "postgres"])
def test_plan_passes_on_what_init_wrote_into_an_odd_directory_name(
    tmp_path: Path, template: str
) -> None:
    repo = tmp_path / "my repo\nwith a line break"
    assert _init(tmp_path, "--template", template, str(repo)).code == 0
    env = hostile.base_env(tmp_path)
    planned = hostile.run(["plan", "--pr", "3", "--branch", "feature"], env, repo)
    assert planned.code == 0, planned.output
