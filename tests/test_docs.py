"""Docs stay true: every command documented and helped, the public API listed once."""

from __future__ import annotations

import typer.main
from typer.testing import CliRunner

import searchkit
from searchkit.cli import app

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def commands() -> list[str]:
    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


def test_every_command_is_in_the_readme_and_has_help() -> None:
    names = commands()
    assert {"similarity", "embed", "index", "query", "info", "export", "delete"} <= set(names)
    for name in names:
        assert f"searchkit {name} " in README, f"README does not show `searchkit {name}`"
        result = CliRunner().invoke(app, [name, "--help"])
        assert result.exit_code == 0 and result.stdout.startswith("Usage:"), name


def test_readme_opens_with_the_two_commands() -> None:
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == [
        "./scripts/demo.sh",
        "./scripts/test.sh",
    ]


def test_public_api_is_sorted_and_complete() -> None:
    assert searchkit.__all__ == sorted(searchkit.__all__)
    assert dir(searchkit) == searchkit.__all__
    for name in searchkit.__all__:
        assert getattr(searchkit, name) is not None, name
    public = {name for name in vars(searchkit) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(searchkit, name)).__name__ == "module"}
    extra = public - modules - set(searchkit.__all__) - {"annotations", "Any", "TYPE_CHECKING"}
    assert not extra, extra


def test_importing_searchkit_loads_no_heavy_module() -> None:
    import subprocess
    import sys

    heavy = "('torch', 'sentence_transformers', 'faiss')"
    code = f"import sys, searchkit.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
