"""The data path runs one way (README "Layout"): a folder imports only the folders to its left."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Left to right along the data path; `gato/` (the namespace root, pipelines, CLI) may import everything.
ORDER = ["suite", "episodes", "processing", "modeling_gato", "training", "evaluation", "hub_cards", "gato"]
CONTRACT = {"suite/task_spec.py", "suite/token_layout.py"}  # the task contract: imports nothing else of gato


def _gato_imports(path: Path) -> list[tuple[int, str]]:
    """(line, folder) for every import of a gato folder in ``path``, relative imports resolved."""
    folder = path.parent.relative_to(ROOT).parts[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: `from .x import y` stays in the folder, `from ..x` is another folder
                names = [folder if node.level == 1 else (node.module or "").split(".")[0]]
                found += [(node.lineno, name) for name in names]
                continue
            names = [node.module or ""]
            if (
                node.module == "gato"
            ):  # `from gato import suite` names a folder; `from gato import GatoConfig` does not
                names = [f"gato.{alias.name}" for alias in node.names if alias.name in ORDER]
        else:
            continue
        for name in names:
            parts = name.split(".")
            # A bare `import gato` only registers the Auto classes (gato/__init__.py), which every `gato.x` import
            # runs anyway; `gato.cli`, `gato.main_job`, `gato.pipelines`, … are the root's own modules.
            if parts[0] == "gato" and len(parts) > 1:
                found.append((node.lineno, parts[1] if parts[1] in ORDER else "gato"))
    return found


def _package_files() -> list[Path]:
    return sorted(p for folder in ORDER for p in (ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _package_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_a_folder_to_its_right(path):
    rank = ORDER.index(path.relative_to(ROOT).parts[0])
    wrong = [f"line {line}: {target}" for line, target in _gato_imports(path) if ORDER.index(target) > rank]
    assert not wrong, f"{path.relative_to(ROOT)} imports to its right: {wrong}"


@pytest.mark.parametrize("relative", sorted(CONTRACT))
def test_the_task_contract_imports_nothing_else_of_gato(relative):
    contract_modules = {Path(c).stem for c in CONTRACT}
    outside = []
    for node in ast.walk(ast.parse((ROOT / relative).read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            if node.level > 1 or node.module not in contract_modules:
                outside.append(f"line {node.lineno}: {'.' * node.level}{node.module or ''}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            outside += [f"line {node.lineno}: {n}" for n in names if n.split(".")[0] == "gato"]
    assert not outside, f"{relative} imports outside the task contract: {outside}"
