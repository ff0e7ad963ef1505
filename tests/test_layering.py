"""Imports point one way: frames, audio, text <- runtime, resources <- services <- processors <-
pipelines <- transports <- server <- cli."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).parent.parent / "callweaver"
LAYERS = {
    "errors": 0,
    "frames": 0,
    "audio": 0,
    "runtime": 1,
    "resources": 1,
    "text": 0,
    "services": 2,
    "processors": 3,
    "pipelines": 4,
    "transports": 5,
    "server": 6,
    "testing": 6,
    "cli": 7,
    "__main__": 8,
    "__init__": 0,
}


def layer_of(module: str) -> int:
    return LAYERS[module.split(".")[1]] if "." in module else 0


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("callweaver")
        ):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("callweaver"))
    return found


MODULES = sorted(p for p in PKG.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_imports_point_one_way(path: Path) -> None:
    rel = path.relative_to(PKG.parent).with_suffix("")
    module = ".".join(rel.parts)
    own = layer_of(module)
    for imported in imports(path):
        assert layer_of(imported) <= own, f"{module} (layer {own}) imports {imported}"
        if module.startswith("callweaver.frames"):
            assert imported.startswith("callweaver.frames"), "frames imports nothing of ours"
        if module.startswith("callweaver.audio"):
            assert imported.startswith(("callweaver.audio", "callweaver.errors")), imported
