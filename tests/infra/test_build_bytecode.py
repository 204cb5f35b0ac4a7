"""The `sam build` artifact ships checked-hash bytecode that Lambda can use despite the zip's 1980 file dates."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
from cfnlint.decode import cfn_yaml

from hub_local.language_extensions import expand_language_extensions
from tests.conftest import ROOT

BUILD = ROOT / ".aws-sam" / "build"
# PEP 552 flags word: bit 0 = hash-based, bit 1 = check the source's hash on import.
CHECKED_HASH = 0b11


def _resources() -> dict[str, dict]:
    return expand_language_extensions(cfn_yaml.load(str(ROOT / "template.yaml")))["Resources"]


def _built_code_dirs() -> list[Path]:
    if not (BUILD / "template.yaml").is_file():
        pytest.skip("no .aws-sam/build: run `make build` (make test does)")
    return [BUILD / name for name, resource in _resources().items() if _is_code(resource)]


def _is_code(resource: dict) -> bool:
    return resource["Type"] in {"AWS::Serverless::Function", "AWS::Serverless::LayerVersion"}


def _pyc_for(source: Path) -> Path:
    return Path(importlib.util.cache_from_source(str(source)))


def test_every_function_and_layer_is_built_by_our_makefiles():
    # A resource left on SAM's default builder would ship no bytecode and recompile on every cold start.
    methods = {name: resource.get("Metadata", {}).get("BuildMethod") for name, resource in _resources().items()}
    code = {name for name, resource in _resources().items() if _is_code(resource)}
    assert {name: methods[name] for name in code} == dict.fromkeys(code, "makefile")


def test_every_built_module_has_checked_hash_bytecode_of_its_own_source():
    checked = 0
    for directory in _built_code_dirs():
        sources = list(directory.rglob("*.py"))
        assert sources, f"{directory.name} was built empty"
        for source in sources:
            header = _pyc_for(source).read_bytes()[:16]
            assert header[:4] == importlib.util.MAGIC_NUMBER, source
            assert int.from_bytes(header[4:8], "little") == CHECKED_HASH, source
            assert header[8:16] == importlib.util.source_hash(source.read_bytes()), f"stale bytecode for {source}"
            checked += 1
    assert checked > 100  # the layer's dependencies are in there, not only our packages


def test_the_layer_holds_our_adapters_and_no_scripts_or_stray_bytecode():
    layer = next(path for path in _built_code_dirs() if path.name == "AdaptersLayer") / "python"
    assert (layer / "partners" / "http.py").is_file()
    assert not (layer / "bin").exists()
    orphans = [
        pyc for pyc in layer.rglob("*.pyc") if not (pyc.parent.parent / f"{pyc.name.split('.')[0]}.py").is_file()
    ]
    assert orphans == []


# Our function packages: what a function's artifact may hold besides hub_core (functions/Makefile's PACKAGES_*).
FUNCTIONS = ROOT / "functions"
FUNCTION_PACKAGES = {path.parent.name for path in FUNCTIONS.glob("*/__init__.py")} - {"hub_core"}


def _imported_modules(source: Path) -> set[str]:
    """The dotted modules a module imports, wherever the import statement is (deferred imports included), with
    `from package import module` counted as that module when it is one of ours."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            package = FUNCTIONS / node.module.replace(".", "/")
            found |= {f"{node.module}.{alias.name}" for alias in node.names if (package / f"{alias.name}.py").is_file()}
    return found


def _imported_packages(source: Path) -> set[str]:
    return {module.split(".")[0] for module in _imported_modules(source)}


def _ships(directory: Path, module: str) -> bool:
    path = directory / module.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_each_function_ships_its_own_packages_and_every_one_its_code_imports():
    functions = {name for name, resource in _resources().items() if resource["Type"] == "AWS::Serverless::Function"}
    for directory in _built_code_dirs():
        if directory.name not in functions:
            continue
        shipped = {path.parent.name for path in directory.glob("*/__init__.py")}
        handler_package = _resources()[directory.name]["Properties"]["Handler"].split(".")[0]
        assert handler_package in shipped, directory.name
        assert "hub_core" in shipped, directory.name
        imported = set().union(*(_imported_packages(source) for source in directory.rglob("*.py")))
        missing = (imported & FUNCTION_PACKAGES) - shipped
        assert not missing, f"{directory.name} imports {sorted(missing)}, which functions/Makefile does not ship"
        # Only what it needs: another function's package in it would be code nobody there runs.
        assert shipped - {"hub_core"} <= imported | {handler_package}, directory.name
        # And each module it imports of ours is there: erasure ships the owners' personal_data modules alone.
        ours = FUNCTION_PACKAGES | {"hub_core"}
        modules = set().union(*(_imported_modules(source) for source in directory.rglob("*.py")))
        absent = sorted(module for module in modules if module.split(".")[0] in ours and not _ships(directory, module))
        assert not absent, f"{directory.name} imports {absent}, which its artifact does not hold"
