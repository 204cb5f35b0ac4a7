"""Cold import from the `sam build` artifact, dated 1980-01-01 as Lambda unzips it, against the same tree with valid
timestamp bytecode; and, for scale, against the same tree with no bytecode (what SAM's default build ships).

The layer's native extensions are built for arm64; this machine swaps in the host build of the same pinned versions
(from the venv), which changes no bytecode. Every probe runs with bytecode writes off, as on Lambda's read-only disk.
"""

from __future__ import annotations

import compileall
import contextlib
import importlib.machinery
import os
import shutil
import site
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench.common import ROOT, Row, Subject, base_env, built_handlers, ratio, third_party_from

BUILD = ROOT / ".aws-sam" / "build"
ZIP_EPOCH = 315532800  # 1980-01-01T00:00:00Z: what every file of a SAM zip is dated on Lambda
VARIANTS = ("shipped", "valid timestamp pyc", "no pyc")


def _host_extensions(layer: Path) -> None:
    host_suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    site_packages = Path(site.getsitepackages()[0])
    for foreign in layer.rglob("*-aarch64-linux-gnu.so"):
        relative = foreign.relative_to(layer).parent / (foreign.name.split(".")[0] + host_suffix)
        shutil.copy2(site_packages / relative, layer / relative)
        foreign.unlink()


def _date_like_the_zip(tree: Path) -> None:
    for path in tree.rglob("*"):
        os.utime(path, (ZIP_EPOCH, ZIP_EPOCH), follow_symlinks=False)


def _drop_bytecode(tree: Path) -> None:
    for cache in list(tree.rglob("__pycache__")):
        shutil.rmtree(cache)


def prepare(workdir: Path) -> dict[str, Path]:
    """Three copies of the artifact (layer under opt/python, each function beside it), one per variant."""
    trees = {}
    for variant in VARIANTS:
        tree = workdir / variant.replace(" ", "-")
        shutil.copytree(BUILD / "AdaptersLayer" / "python", tree / "opt" / "python", symlinks=True)
        for handler in built_handlers():
            shutil.copytree(BUILD / handler.logical_id, tree / handler.logical_id, symlinks=True)
        _host_extensions(tree / "opt" / "python")
        if variant != "shipped":
            _drop_bytecode(tree)
        _date_like_the_zip(tree)
        if variant == "valid timestamp pyc":
            # Ordinary pyc, recorded against the 1980 dates the sources now carry: valid on import.
            compileall.compile_dir(tree, quiet=1, invalidation_mode=compileall.py_compile.PycInvalidationMode.TIMESTAMP)
        trees[variant] = tree
    return trees


def subjects(trees: dict[str, Path]) -> list[Subject]:
    found = []
    for handler in built_handlers():
        for variant, tree in trees.items():
            # Lambda's order: the function's code (/var/task), then the layer (/opt/python); boto3 from the runtime.
            env = base_env([tree / handler.logical_id, tree / "opt" / "python"]) | {"PYTHONDONTWRITEBYTECODE": "1"}
            statement = (
                f"import {handler.module}, pydantic; "
                f"assert pydantic.__file__.startswith({str(tree)!r}), 'the layer copy must be the one imported'"
            )
            found.append(Subject(f"artifact {variant}: {handler.module}", statement, env))
    return found


def rows(medians: dict[str, float]) -> list[Row]:
    table = []
    for handler in built_handlers():
        valid = medians[f"artifact valid timestamp pyc: {handler.module}"]
        shipped = medians[f"artifact shipped: {handler.module}"]
        bare = medians[f"artifact no pyc: {handler.module}"]
        table.append(Row(f"artifact import {handler.module} / same code, valid pyc", ratio(shipped, valid), "<= 1.05"))
        table.append(Row("  (no pyc, as SAM's default build ships) / valid pyc", ratio(bare, valid), "(was)"))
    return table


def workdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="bench-artifact-")


@contextlib.contextmanager
def probes_like_lambda() -> Iterator[dict[str, Path] | None]:
    """While open, with a `sam build` there, fresh-process probes import third-party packages from the built layer
    alone, as a Lambda container does; yields the artifact trees (None without a build: probes use the venv)."""
    if not (BUILD / "template.yaml").is_file():
        yield None
        return
    with workdir() as directory:
        trees = prepare(Path(directory))
        with third_party_from(trees["valid timestamp pyc"] / "opt" / "python"):
            yield trees
