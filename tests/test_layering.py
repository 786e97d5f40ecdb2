"""Layering: numba only in the rating kernels, duckdb only in bills/, no stage imports a
later one (ingest -> rules -> rating -> bills -> ratecycle)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("ingest", "rules", "rating", "bills", "ratecycle")


def imports(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, top-level module) of every import in a file, including those inside functions;
    relative imports are resolved against the file's package."""
    package = path.relative_to(root).parent.parts
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                name = ".".join([*base, *(node.module.split(".") if node.module else [])])
            else:
                name = node.module
            found.append((node.lineno, name.split(".")[0]))
    return found


def sources() -> list[Path]:
    return sorted(p for stage in STAGES for p in (ROOT / stage).rglob("*.py"))


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def test_every_stage_has_sources():
    found = {p.relative_to(ROOT).parts[0] for p in sources()}
    assert found == set(STAGES)


def test_imports_resolve_relative_imports(tmp_path):
    module = tmp_path / "rating" / "kernels" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text("from .. import rate\nfrom . import prefix\nimport numba.core\n"
                      "def f():\n    from bills import build\n")
    assert sorted(imports(module, tmp_path)) == [
        (1, "rating"), (2, "rating"), (3, "numba"), (5, "bills")]


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_numba_only_in_rating_kernels(path):
    rel = path.relative_to(ROOT).parts
    if rel[:2] == ("rating", "kernels"):
        return
    assert [where(path, n) for n, mod in imports(path) if mod in ("numba", "llvmlite")] == []


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_duckdb_only_in_bills(path):
    if path.relative_to(ROOT).parts[0] == "bills":
        return
    assert [where(path, n) for n, mod in imports(path) if mod == "duckdb"] == []


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_stage_imports_a_later_one(path):
    stage = STAGES.index(path.relative_to(ROOT).parts[0])
    later = set(STAGES[stage + 1:])
    assert [f"{where(path, n)} imports {mod}" for n, mod in imports(path) if mod in later] == []


def test_tests_and_bench_do_not_shadow_the_stages():
    # with --import-mode=importlib a tests/rating/ folder must not be a package named rating
    for folder in ("tests", "bench"):
        for stage in STAGES:
            assert not (ROOT / folder / stage / "__init__.py").exists()
