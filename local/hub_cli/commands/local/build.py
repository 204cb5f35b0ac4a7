"""What `make openapi`, `make scan` and `make build` run: `hub local openapi`, `expand` and `layer-size`."""

from __future__ import annotations

import json
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Final

import click

from hub_cli.commands.local.common import UsageError, fail, reported, template_option
from hub_local.cfn import TemplateError, load_yaml
from hub_local.openapi import DOCUMENT_PATH, OpenApiError, build_document, render

LAYER_LIMIT_UNZIPPED: Final = 250 * 1024 * 1024


def human_size(size: int) -> str:
    """Binary units with one decimal, as `du -h` and the Lambda console show sizes."""
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def layer_sizes(directory: Path) -> tuple[int, int]:
    """(unzipped, zipped) bytes of a directory, zipped with deflate the way a deployment package is."""
    files = sorted(path for path in directory.rglob("*") if path.is_file())
    unzipped = sum(path.stat().st_size for path in files)
    with tempfile.TemporaryFile() as sink:
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, path.relative_to(directory).as_posix())
        zipped = sink.tell()
    return unzipped, zipped


@click.command("openapi", short_help="Write the HTTP API's OpenAPI document from the functions.")
@template_option
@click.option("--output", "-o", help=f"Where to write it ({DOCUMENT_PATH} beside the template).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 when the file is stale.")
@reported
def openapi(template: str, output: str | None, check: bool) -> int:
    """Write the OpenAPI document of the template's HTTP API, built from each function's routes and models
    (unchanged when it is current); --check only compares, for the tests and CI."""
    path = Path(output) if output else Path(template).parent / DOCUMENT_PATH
    try:
        text = render(build_document(template))
    except FileNotFoundError:
        raise UsageError(f"template {template} not found") from None
    except (OpenApiError, TemplateError) as error:
        return fail(str(error))
    current = path.read_text(encoding="utf-8") if path.is_file() else None
    if check:
        if current != text:
            return fail(f"{path} is stale; run make openapi")
        print(f"{path} is up to date")
        return 0
    if current != text:
        path.write_text(text, encoding="utf-8")
    print(f"wrote {path}" if current != text else f"{path} is up to date")
    return 0


@click.command("expand", short_help="Write the template with its Fn::ForEach loops unrolled, as JSON.")
@click.argument("template")
@click.argument("output")
@reported
def expand(template: str, output: str) -> int:
    """Write TEMPLATE (SAM template) with its Fn::ForEach loops unrolled to OUTPUT, a JSON file (make scan:
    .aws-sam/scan-template.json)."""
    # Checkov does not know Fn::ForEach: given the template as written it fails to merge Globals into the functions
    # ("Failed to create a new template with enriched resources") and checks them without Globals' Runtime and
    # Environment. So make scan has it check this expansion, where every resource is a mapping (inline skips kept).
    try:
        document = load_yaml(template)
    except FileNotFoundError:
        raise UsageError(f"template {template} not found") from None
    except TemplateError as error:
        return fail(str(error))
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return 0


@click.command("layer-size", short_help="Unzipped and zipped size of a built layer directory.")
@click.argument("directory")
@click.option("--name", help="Name to print (default: the directory's name).")
@reported
def layer_size(directory: str, name: str | None) -> int:
    """Print the unzipped and zipped size of DIRECTORY, a built layer (make build: .aws-sam/build/AdaptersLayer);
    exit 1 when it is over Lambda's unzipped limit."""
    path = Path(directory)
    if not path.is_dir():
        raise UsageError(f"layer directory {path} does not exist")
    unzipped, zipped = layer_sizes(path)
    name = name or path.resolve().name
    print(
        f"layer {name}: {human_size(unzipped)} ({unzipped} bytes) unzipped, "
        f"{human_size(zipped)} ({zipped} bytes) zipped (limit {human_size(LAYER_LIMIT_UNZIPPED)} unzipped)"
    )
    if unzipped > LAYER_LIMIT_UNZIPPED:
        print(f"layer {name} is over Lambda's unzipped limit", file=sys.stderr)
        return 1
    return 0
