"""The folder tree is the architecture: each package's opening docstring maps
its modules (so the map cannot drift from the tree), every rule's record names
a module of rnn/rules/, and no function in rnn/ grows past 80 lines."""
import ast
import re
from pathlib import Path

import pytest

import rnn
from rnn.rules import REGISTRY

RNN = Path(rnn.__file__).parent
PACKAGES = sorted(p for p in RNN.iterdir() if (p / "__init__.py").exists())


def modules(folder: Path) -> set[str]:
    return {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}


def mapped(folder: Path) -> set[str]:
    """The module names a package's docstring lists after it says that a test
    keeps the list (an indented name, then what the module holds)."""
    doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text())) or ""
    marker = re.search(r"a\s+test\s+keeps\s+this\s+list\s+equal\s+to\s+the\s+folder's\s+"
                       r"modules", doc)
    assert marker, f"{folder.name}/__init__.py does not map its modules"
    return set(re.findall(r"^    ([a-z_]+)\s{2,}\S", doc[marker.end():], re.M))


@pytest.mark.parametrize("folder", [RNN, *PACKAGES], ids=lambda p: p.name)
def test_each_package_docstring_maps_exactly_its_modules(folder):
    assert mapped(folder) == modules(folder)


def test_the_top_docstring_names_every_package():
    doc = rnn.__doc__
    for p in PACKAGES:
        assert f"{p.name}/" in doc, p.name


def test_every_rule_record_names_a_module_of_the_rules_package():
    assert {r.module for r in REGISTRY.values()} == \
        {f"rnn.rules.{m}" for m in modules(RNN / "rules")}


def test_no_function_in_rnn_is_over_80_lines():
    long = []
    for path in RNN.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 80:
                    long.append(f"{path.relative_to(RNN)}:{node.name} ({n} lines)")
    assert not long
