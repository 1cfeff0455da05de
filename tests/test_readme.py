"""The README stays true to the code: its layout lists every module, its examples use the
public API only, and every row of its reliability table names a test that exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, f"the README has no section {title!r}"
    return match.group(1)


def layout_files(tree: str) -> set[str]:
    """The file paths a tree like ``  session/`` / ``    bench.py   what it holds`` lists."""
    [block] = re.findall(r"```\n(titanic_bench/\n.*?)```", tree, re.S)
    folders: list[str] = []
    files = set()
    for line in block.splitlines()[1:]:
        depth, name = (len(line) - len(line.lstrip())) // 2, line.split()[0]
        del folders[depth - 1 :]
        if name.endswith("/"):
            folders.append(name.rstrip("/"))
        else:
            files.add("/".join([*folders, name]))
    return files


def test_the_layout_lists_every_module_of_the_package() -> None:
    package = ROOT / "titanic_bench"
    modules = {
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "__init__.py" or path.parent == package
    }
    listed = layout_files(section("Layout"))
    assert sorted(modules - listed) == [], "modules missing from the README's layout"
    assert sorted(listed - modules - {"data/titanic.csv", "py.typed"}) == [], (
        "the layout lists files that are gone"
    )


def test_the_examples_import_from_the_public_api_only() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    internal = [
        line for block in blocks for line in block.splitlines() if re.match(r"\s*from titanic_bench\.", line)
    ]
    assert internal == []


def test_every_reliability_case_names_a_test_that_exists() -> None:
    table = section("Reliability")
    references = re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)`", table)
    assert len(references) >= 20, "the reliability table should back each case with a test"
    for path, name in references:
        tree = ast.parse((ROOT / path).read_text())
        names = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        assert name in names, f"{path}::{name} named in the README's reliability table does not exist"
