"""Each `sam build` handler runs as `sam local invoke --env-vars` would run it: a clean interpreter with only the
function's artifact, the layer's python/ and the runtime's own boto3 importable, the environment exactly make run's
env-vars file plus Lambda's own variables, fed an events file. A dependency only the dev venv has fails here."""

from __future__ import annotations

import importlib.machinery
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hub_local import envvars
from hub_local.cfn import REGION
from hub_local.examples import prepare
from hub_local.stack import LocalStack
from tests.conftest import EVENTS, ROOT

BUILD = ROOT / ".aws-sam" / "build"
SITE_PACKAGES = Path(next(path for path in sys.path if path.endswith("site-packages")))
# What the python3.13 runtime provides besides the standard library: boto3 and what it needs.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")
# One events file per function; files with a seed get it applied on the stack first, as make invoke does.
CASES = {
    "LeadIntakeFunction": ("lead_intake/post_valid.json", 201),
    "CampaignLifecycleFunction": ("campaign_lifecycle/get_campaign.json", 200),
    "DonationIngesterFunction": ("donation_ingester/callback_post_json.json", 200),
    "LicenceIssuanceFunction": ("licence_issuance/post_site.json", 201),
    "LoyaltyRelayFunction": ("loyalty_relay/lead_captured_batch.json", None),
    "ErasureFunction": ("erasure/erasure_requested.json", None),
    "ApiDocsFunction": ("campaign_lifecycle/get_services.json", 200),
}
# Runs in the clean interpreter: Lambda's sys.path order (task root, then the layer, then the runtime), then the
# handler called once with the event; its result is the last line of stdout.
RUNNER = """
import importlib, json, sys
task, layer, runtime, handler, event_file = sys.argv[1:]
sys.path[:0] = [task, layer + "/lib/python3.13/site-packages", layer, runtime]
class Context:
    function_name = "{function}"; function_version = "$LATEST"; memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:{region}:123456789012:function:{function}"
    aws_request_id = "c0ffee00-0000-4000-8000-000000000000"; log_group_name = "/aws/lambda/{function}"
    log_stream_name = "local"
    def get_remaining_time_in_millis(self): return 15000
module, _, name = handler.rpartition(".")
loaded = importlib.import_module(module)
for path in (loaded.__file__, importlib.import_module("pydantic").__file__, importlib.import_module("boto3").__file__):
    print("imported " + path)
result = getattr(loaded, name)(json.load(open(event_file)), Context())
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The layer's python/ with the host's build of its native extensions (the artifact's are arm64), and the
    runtime's own boto3 as links into the dev venv, which the layer's must shadow."""
    if not (BUILD / "template.yaml").is_file():
        pytest.skip("no .aws-sam/build: run `make build` (make test does)")
    root = tmp_path_factory.mktemp("lambda")
    layer = root / "opt" / "python"
    shutil.copytree(BUILD / "AdaptersLayer" / "python", layer, symlinks=True)
    host_suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    for foreign in layer.rglob("*-aarch64-linux-gnu.so"):
        relative = foreign.relative_to(layer).parent / (foreign.name.split(".")[0] + host_suffix)
        shutil.copy2(SITE_PACKAGES / relative, layer / relative)
        foreign.unlink()
    runtime = root / "var" / "runtime"
    runtime.mkdir(parents=True)
    for name in RUNTIME_PACKAGES:
        (runtime / name).symlink_to(SITE_PACKAGES / name)
    return layer, runtime


@pytest.fixture
def stack():
    # A fresh stack per test, as each make invoke has: the seeds of two files may create the same campaign.
    with LocalStack(ROOT / "template.yaml", gateway_port=None, pump_queues=False) as local:
        yield local


def lambda_own_variables(function: str, handler: str, memory: int, timeout: int) -> dict[str, str]:
    """What Lambda (and sam local invoke) sets itself, with the dummy credentials moto takes."""
    return {
        "AWS_SAM_LOCAL": "true",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout),
        "AWS_LAMBDA_FUNCTION_HANDLER": handler,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"aws/lambda/{function}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "$LATEST",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "defaultkey",
        "AWS_SECRET_ACCESS_KEY": "defaultsecret",
        "AWS_ACCOUNT_ID": "123456789012",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "LAMBDA_TASK_ROOT": "/var/task",
        "_HANDLER": handler,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    }


def test_the_env_vars_file_sets_every_declared_variable_and_points_at_the_stack(stack, tmp_path):
    document = json.loads(envvars.write(stack, tmp_path / "env.json").read_text())
    assert set(document) == set(stack.template.functions)
    for logical_id, values in document.items():
        assert set(values) == set(stack.template.functions[logical_id].environment)
        assert values["AWS_ENDPOINT_URL"] == stack.moto_url
    assert document["LeadIntakeFunction"]["MIIMOSA_BASE_URL"] == stack.partner_urls["miimosa"]
    assert document["LeadIntakeFunction"]["MIIMOSA_API_KEY_PARAM"].startswith("/partner-hub/")
    advertised = envvars.sam_env_vars(stack, advertise="host.docker.internal")
    assert advertised["CampaignLifecycleFunction"]["UMBRELLA_BASE_URL"].startswith("http://host.docker.internal:")


@pytest.mark.parametrize("function", sorted(CASES))
def test_the_built_handler_answers_its_event_in_a_clean_interpreter(function, built, stack, tmp_path):
    layer, runtime = built
    relative, status = CASES[function]
    path = EVENTS / relative
    event = prepare(stack, path, json.loads(path.read_text()))
    if function == "ApiDocsFunction":
        event |= {"routeKey": "GET /openapi.json", "rawPath": "/openapi.json"}
        event["requestContext"] = event["requestContext"] | {"routeKey": "GET /openapi.json"}
        event["requestContext"]["http"] = event["requestContext"]["http"] | {"path": "/openapi.json"}
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(event))
    spec = stack.template.functions[function]
    env_file = envvars.write(stack, tmp_path / "env.json")
    env = lambda_own_variables(function, spec.handler, spec.memory_size, spec.timeout)
    env |= json.loads(env_file.read_text())[function]
    task = BUILD / function
    completed = subprocess.run(  # noqa: S603 - our interpreter, our runner
        [
            sys.executable,
            "-I",  # no PYTHON* variables, no user site, no script directory
            "-S",  # no site module: the dev venv's site-packages stay off sys.path
            "-B",
            "-c",
            RUNNER.format(function=function, region=REGION),
            str(task),
            str(layer),
            str(runtime),
            spec.handler,
            str(event_file),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.strip().splitlines()
    imported = [line.removeprefix("imported ") for line in lines if line.startswith("imported ")]
    assert imported[0].startswith(str(task))
    assert imported[1].startswith(str(layer))
    # The layer ships the boto3 the tests run, and it wins over the runtime's (hub_core.aws needs its botocore).
    assert imported[2].startswith(str(layer))
    result = json.loads(lines[-1])
    if status is None:
        assert result.get("batchItemFailures", []) == [], result
        assert "errorType" not in result
    else:
        assert result["statusCode"] == status, result
