"""Finds the generated Pulumi projects and runs their programs under Pulumi's mocks.

Every project is a folder `generated/<stem>/` holding `__main__.py`, `Pulumi.yaml` and one
`openapi.<env>.json` per deployed environment. The folder can be overridden with
SPECGEN_GENERATED_DIR (useful to test a scratch rendering). The programs run offline: the real
`pulumi` and `pulumi_aws` packages, no CLI, no provider plugin, no AWS account.
"""

import json
import os
import re
import runpy
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GENERATED = Path(os.environ.get("SPECGEN_GENERATED_DIR", REPO / "generated"))

REGION = "eu-west-1"
ACCOUNT = "123456789012"

# Placeholders specgen leaves in openapi.<env>.json; the Pulumi program fills them.
PLACEHOLDER = re.compile(r"\$\{(region|backend\.([^}]+)\.arn)\}")


def pulumi_projects() -> list[Path]:
    return sorted(p.parent for p in GENERATED.glob("*/__main__.py"))


def openapi_documents() -> list[Path]:
    return sorted(GENERATED.glob("*/openapi.*.json"))


def environments(project: Path) -> list[str]:
    """The deployed environments of a project, read from its OpenAPI documents."""
    return sorted(p.name[len("openapi.") : -len(".json")] for p in project.glob("openapi.*.json"))


def project_stacks() -> list[tuple[Path, str]]:
    return [(project, env) for project in pulumi_projects() for env in environments(project)]


def stack_id(param) -> str:
    if isinstance(param, tuple):
        return f"{param[0].name}:{param[1]}"
    return param.name if isinstance(param, Path) else str(param)


def project_name(project: Path) -> str:
    return yaml.safe_load((project / "Pulumi.yaml").read_text(encoding="utf-8"))["name"]


def lambda_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def invoke_arn(function_arn: str) -> str:
    return (
        f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{function_arn}/invocations"
    )


def fill_placeholders(text: str, arn_of_backend) -> str:
    """Fills the OpenAPI placeholders the way a deployment would, with the test's own values."""

    def substitute(match: re.Match) -> str:
        if match.group(1) == "region":
            return REGION
        return arn_of_backend(match.group(2))

    return PLACEHOLDER.sub(substitute, text)


@dataclass
class Resource:
    typ: str
    name: str
    id: str
    inputs: dict
    state: dict


@dataclass
class Deployment:
    """What one run of a program registered: resources, stack outputs and the config it read."""

    project: Path
    stack: str
    resources: list[Resource] = field(default_factory=list)
    outputs: dict = field(default_factory=dict)
    config_read: dict = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Resource]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name: str) -> Resource:
        found = [r for r in self.of_type(typ) if r.name == name]
        assert len(found) == 1, f"expected one {typ} named {name!r}, found {len(found)}"
        return found[0]

    def by_id(self, typ: str, resource_id: str) -> Resource:
        found = [r for r in self.of_type(typ) if r.id == resource_id]
        assert len(found) == 1, f"no {typ} with id {resource_id!r}"
        return found[0]


class RecordingMocks(pulumi.runtime.Mocks):
    """Records every resource; fills only the outputs the real provider would compute."""

    def __init__(self, deployment: Deployment):
        self.deployment = deployment

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        resource_id = f"{args.name}-id"
        state = dict(args.inputs)
        if args.typ == "aws:apigatewayv2/api:Api":
            resource_id = "a1b2c3d4e5"
            state["apiEndpoint"] = f"https://{resource_id}.execute-api.{REGION}.amazonaws.com"
            state["executionArn"] = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{resource_id}"
        elif args.typ == "aws:lambda/function:Function":
            physical = args.inputs.get("name") or f"{args.name}-abc1234"
            state["name"] = physical
            state["arn"] = lambda_arn(physical)
            state["invokeArn"] = invoke_arn(state["arn"])
        elif args.typ == "aws:iam/role:Role":
            physical = args.inputs.get("name") or f"{args.name}-abc1234"
            state["name"] = physical
            state["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{physical}"
        elif args.typ == "aws:apigatewayv2/domainName:DomainName":
            config = dict(args.inputs.get("domainNameConfiguration") or {})
            config["targetDomainName"] = "d-abc123.execute-api.eu-west-1.amazonaws.com"
            config["hostedZoneId"] = "Z2FDTNDATAQYW2"
            state["domainNameConfiguration"] = config
        elif args.typ == "aws:apigatewayv2/integration:Integration":
            resource_id = f"integ-{args.name}"
        self.deployment.resources.append(
            Resource(args.typ, args.name, resource_id, dict(args.inputs), state)
        )
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs):
        if args.token == "aws:index/getRegion:getRegion":
            return {
                "region": REGION,
                "name": REGION,
                "id": REGION,
                "endpoint": "",
                "description": "",
            }
        raise AssertionError(f"the program made an unexpected call: {args.token}")


class RecordingConfig(dict):
    """Stack config: known values first, then a distinct made-up value for any other key.

    The made-up value names the key, so a test can tell which key fed which resource; every key
    the program reads is recorded.
    """

    def __init__(self, project: str, known: dict[str, str], read: dict):
        super().__init__()
        self.prefix = f"{project}:"
        self.known = known
        self.read = read

    def __contains__(self, key) -> bool:
        return isinstance(key, str) and key.startswith(self.prefix)

    def __getitem__(self, key: str) -> str:
        short = key[len(self.prefix) :]
        value = self.known.get(short, lambda_arn(f"config-{short}"))
        self.read[short] = value
        return value


# Values for the config keys of the wikibot spec; other specs get made-up values.
KNOWN_CONFIG = {
    "wikiFunctionArn": lambda_arn("otterwiki"),
    "mcpArtifact": "artifacts/mcp.zip",
    "certificateArn": f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/0000-1111",
}


def run_program(project: Path, stack: str) -> Deployment:
    """Runs `project/__main__.py` as stack `stack` under mocks and returns what it registered."""
    deployment = Deployment(project, stack)
    name = project_name(project)
    pulumi.runtime.set_mocks(RecordingMocks(deployment), project=name, stack=stack, preview=False)
    pulumi.runtime.config.CONFIG.set(RecordingConfig(name, KNOWN_CONFIG, deployment.config_read))

    exported = {}

    def record_export(key, value):
        exported[key] = value

    @pulumi.runtime.test
    def run():
        original = pulumi.export
        pulumi.export = record_export
        try:
            runpy.run_path(str(project / "__main__.py"), run_name="__main__")
        finally:
            pulumi.export = original
        return pulumi.Output.all(**exported).apply(deployment.outputs.update)

    run()
    return deployment


_deployments: dict[tuple[Path, str], Deployment] = {}


@pytest.fixture
def deployment(request) -> Deployment:
    project, stack = request.param
    if (project, stack) not in _deployments:
        _deployments[(project, stack)] = run_program(project, stack)
    return _deployments[(project, stack)]


def load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
