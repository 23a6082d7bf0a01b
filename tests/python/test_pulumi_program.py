"""Runs every generated Pulumi program under mocks, once per deployed environment, and checks the
resources it declares against sources other than the program: the OpenAPI document specgen wrote
beside it, and, for the wikibot spec, facts written out by hand below.

Resource names are part of what is checked: each resource is named after its spec entry (a route
by its key, an integration, permission and function by its backend) because `pulumi preview`
shows these names and renaming one replaces the resource.
"""

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pytest

from conftest import (
    ACCOUNT,
    REGION,
    Deployment,
    environments,
    fill_placeholders,
    load_json,
    project_stacks,
    pulumi_projects,
    run_program,
    stack_id,
)

API = "aws:apigatewayv2/api:Api"
AUTHORIZER = "aws:apigatewayv2/authorizer:Authorizer"
INTEGRATION = "aws:apigatewayv2/integration:Integration"
ROUTE = "aws:apigatewayv2/route:Route"
STAGE = "aws:apigatewayv2/stage:Stage"
DOMAIN = "aws:apigatewayv2/domainName:DomainName"
MAPPING = "aws:apigatewayv2/apiMapping:ApiMapping"
FUNCTION = "aws:lambda/function:Function"
PERMISSION = "aws:lambda/permission:Permission"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"

STACKS = project_stacks()
stacks = pytest.mark.parametrize("deployment", STACKS, ids=stack_id, indirect=True)

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")


@dataclass
class ExpectedRoute:
    backend: str
    uri: str
    authorizer: str | None


def expected_routes(document: dict) -> dict[str, ExpectedRoute]:
    """Route key -> backend, integration URI and authorizer, as the OpenAPI document says."""
    integrations = document.get("components", {}).get("x-amazon-apigateway-integrations", {})
    routes = {}
    for path, item in document["paths"].items():
        for field, operation in item.items():
            if field == "x-amazon-apigateway-any-method":
                method = "ANY"
            elif field in HTTP_METHODS:
                method = field.upper()
            else:
                continue
            if operation.get("isDefaultRoute"):
                key = "$default"
            else:
                key = f"{method} {path}"
            integration = operation["x-amazon-apigateway-integration"]
            if "$ref" in integration:
                integration = integrations[integration["$ref"].rsplit("/", 1)[1]]
            security = operation.get("security") or []
            assert len(security) <= 1, f"{key}: API Gateway takes one security requirement"
            authorizer = next(iter(security[0])) if security else None
            routes[key] = ExpectedRoute(
                operation["x-specgen-backend"], integration["uri"], authorizer
            )
    return routes


def openapi_of(deployment: Deployment) -> dict:
    return load_json(deployment.project / f"openapi.{deployment.stack}.json")


def backend_arns(deployment: Deployment) -> dict[str, str]:
    """The function ARN of each backend: a managed one's from its Function, a referenced one's
    from the stack config it was read from (taken from its integration, then checked)."""
    arns = {}
    configured = set(deployment.config_read.values())
    for integration in deployment.of_type(INTEGRATION):
        functions = [f for f in deployment.of_type(FUNCTION) if f.name == integration.name]
        if functions:
            arns[integration.name] = functions[0].state["arn"]
        else:
            uri = integration.inputs["integrationUri"]
            arn = uri.split("/functions/", 1)[1].removesuffix("/invocations")
            assert arn in configured, f"{integration.name}: ARN {arn} is not from stack config"
            arns[integration.name] = arn
    return arns


def target_backend(deployment: Deployment, route) -> str:
    target = route.inputs["target"]
    assert target.startswith("integrations/"), f"{route.name}: target {target!r}"
    return deployment.by_id(INTEGRATION, target.removeprefix("integrations/")).name


def test_generated_projects_exist():
    names = [p.name for p in pulumi_projects()]
    assert "wikibot" in names, f"no generated/wikibot/__main__.py; projects found: {names}"


@stacks
def test_routes_match_the_openapi_document(deployment):
    expected = expected_routes(openapi_of(deployment))
    routes = {r.inputs["routeKey"]: r for r in deployment.of_type(ROUTE)}
    assert sorted(routes) == sorted(expected)

    (api,) = deployment.of_type(API)
    arns = backend_arns(deployment)
    for key, route in routes.items():
        want = expected[key]
        assert route.name == key, "a route is named after its key"
        assert route.inputs["apiId"] == api.id
        backend = target_backend(deployment, route)
        assert backend == want.backend, f"{key} goes to {backend}, the document says {want.backend}"
        integration = deployment.one(INTEGRATION, backend)
        uri = fill_placeholders(want.uri, arns.__getitem__)
        assert integration.inputs["integrationUri"] == uri, key
        if want.authorizer is None:
            assert route.inputs["authorizationType"] == "NONE", key
            assert "authorizerId" not in route.inputs, key
        else:
            assert route.inputs["authorizationType"] == "JWT", key
            authorizer = deployment.by_id(AUTHORIZER, route.inputs["authorizerId"])
            assert authorizer.name == want.authorizer, key


@stacks
def test_one_integration_and_one_permission_per_backend(deployment):
    backends = {route.backend for route in expected_routes(openapi_of(deployment)).values()}
    (api,) = deployment.of_type(API)
    integrations = deployment.of_type(INTEGRATION)
    assert sorted(i.name for i in integrations) == sorted(backends)
    for integration in integrations:
        assert integration.inputs["apiId"] == api.id
        assert integration.inputs["integrationType"] == "AWS_PROXY"
        assert integration.inputs["integrationMethod"] == "POST"
        assert integration.inputs["payloadFormatVersion"] == "2.0"

    arns = backend_arns(deployment)
    permissions = deployment.of_type(PERMISSION)
    assert sorted(p.name for p in permissions) == sorted(backends)
    for permission in permissions:
        assert permission.inputs["action"] == "lambda:InvokeFunction"
        assert permission.inputs["principal"] == "apigateway.amazonaws.com"
        assert permission.inputs["sourceArn"] == f"{api.state['executionArn']}/*/*"
        functions = [f for f in deployment.of_type(FUNCTION) if f.name == permission.name]
        if functions:
            assert permission.inputs["function"] == functions[0].state["name"]
        else:
            assert permission.inputs["function"] == arns[permission.name]


@stacks
def test_authorizers_match_the_openapi_document(deployment):
    document = openapi_of(deployment)
    schemes = document.get("components", {}).get("securitySchemes", {})
    authorizers = {a.name: a for a in deployment.of_type(AUTHORIZER)}
    assert sorted(authorizers) == sorted(schemes)
    for name, scheme in schemes.items():
        gateway = scheme["x-amazon-apigateway-authorizer"]
        authorizer = authorizers[name]
        assert authorizer.inputs["authorizerType"] == "JWT"
        jwt = authorizer.inputs["jwtConfiguration"]
        assert jwt["issuer"] == gateway["jwtConfiguration"]["issuer"]
        assert jwt["audiences"] == gateway["jwtConfiguration"]["audience"]
        assert authorizer.inputs["identitySources"] == [gateway["identitySource"]]


@stacks
def test_api_stage_and_managed_functions(deployment):
    (api,) = deployment.of_type(API)
    assert api.inputs["protocolType"] == "HTTP"
    assert "corsConfiguration" not in api.inputs
    assert "body" not in api.inputs

    (stage,) = deployment.of_type(STAGE)
    assert stage.inputs["apiId"] == api.id
    assert stage.inputs["autoDeploy"] is True

    for mapping in deployment.of_type(MAPPING):
        assert mapping.inputs["apiId"] == api.id
        assert mapping.inputs["stage"] == stage.inputs["name"]
        assert mapping.inputs["domainName"] in [
            d.inputs["domainName"] for d in deployment.of_type(DOMAIN)
        ]
    assert len(deployment.of_type(MAPPING)) == len(deployment.of_type(DOMAIN))

    roles = {r.name: r for r in deployment.of_type(ROLE)}
    attachments = {a.name: a for a in deployment.of_type(ATTACHMENT)}
    for function in deployment.of_type(FUNCTION):
        assert function.inputs["architectures"] in (["x86_64"], ["arm64"])
        role = roles[f"{function.name}-role"]
        assert function.inputs["role"] == role.state["arn"]
        assert "lambda.amazonaws.com" in role.inputs["assumeRolePolicy"]
        attachment = attachments[f"{function.name}-basic-execution"]
        assert attachment.inputs["role"] == role.state["name"]
        assert attachment.inputs["policyArn"].endswith("service-role/AWSLambdaBasicExecutionRole")


@stacks
def test_openapi_output_is_the_document_filled_in(deployment):
    path = deployment.project / f"openapi.{deployment.stack}.json"
    arns = backend_arns(deployment)
    filled = fill_placeholders(path.read_text(encoding="utf-8"), arns.__getitem__)
    assert deployment.outputs["openapi"] == filled
    assert deployment.outputs["api_endpoint"].startswith("https://")
    assert deployment.outputs["base_url"].startswith("https://")


@pytest.mark.parametrize("project", pulumi_projects(), ids=stack_id)
def test_unknown_stack_is_refused_by_name(project: Path):
    with pytest.raises(pulumi.RunError) as refused:
        run_program(project, "no-such-stack")
    message = str(refused.value)
    assert "no-such-stack" in message
    for env in environments(project):
        assert env in message, "the error names the stacks the program knows"


# Facts about the wikibot spec, written out by hand from specs/wikibot.yaml and the derivation
# rules of the OAuth block, so that a mistake shared by the OpenAPI document and the program
# still shows.

WIKIBOT = [s for s in STACKS if s[0].name == "wikibot" and s[1] == "dev"]
wikibot_dev = pytest.mark.parametrize("deployment", WIKIBOT, ids=stack_id, indirect=True)

WIKIBOT_ROUTES = {
    "$default": "wiki",
    "ANY /mcp": "mcp",
    "ANY /mcp/{proxy+}": "mcp",
    "ANY /.well-known/oauth-protected-resource/mcp": "mcp",
    "ANY /mcp/.well-known/oauth-protected-resource": "mcp",
    "ANY /.well-known/oauth-protected-resource": "mcp",
    "ANY /.well-known/oauth-authorization-server": "mcp",
    "ANY /.well-known/oauth-authorization-server/mcp": "mcp",
    "ANY /mcp/.well-known/oauth-authorization-server": "mcp",
    "ANY /.well-known/openid-configuration/mcp": "mcp",
    "ANY /mcp/.well-known/openid-configuration": "mcp",
    # `default_endpoints: true`: the router redirects these to the authorization server.
    "ANY /authorize": "mcp",
    "ANY /token": "mcp",
    "ANY /register": "mcp",
}


def test_wikibot_dev_is_generated():
    assert WIKIBOT, "generated/wikibot has no dev stack (openapi.dev.json)"


@wikibot_dev
def test_wikibot_routes(deployment):
    routes = {r.inputs["routeKey"]: r for r in deployment.of_type(ROUTE)}
    assert {key: target_backend(deployment, r) for key, r in routes.items()} == WIKIBOT_ROUTES
    # Every wikibot route is open at the gateway; /mcp is "bearer": the Lambda checks the token.
    assert {r.inputs["authorizationType"] for r in routes.values()} == {"NONE"}
    assert deployment.of_type(AUTHORIZER) == []


@wikibot_dev
def test_wikibot_backends(deployment):
    wiki = deployment.one(INTEGRATION, "wiki")
    assert wiki.inputs["integrationUri"] == (
        f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/"
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:otterwiki/invocations"
    )
    assert [f.name for f in deployment.of_type(FUNCTION)] == ["mcp"]

    mcp = deployment.one(FUNCTION, "mcp")
    assert mcp.inputs["architectures"] == ["arm64"]
    assert mcp.inputs["runtime"] == "provided.al2023"
    assert mcp.inputs["handler"] == "bootstrap"
    assert mcp.inputs["memorySize"] == 256
    assert mcp.inputs["timeout"] == 29
    assert mcp.inputs["environment"]["variables"] == {
        "RUST_LOG": "info",
        "SPECGEN_ENVIRONMENT": "dev",
    }
    assert deployment.one(INTEGRATION, "mcp").inputs["integrationUri"] == mcp.state["invokeArn"]
    assert deployment.config_read["mcpArtifact"] == "artifacts/mcp.zip"
    assert deployment.config_read["wikiFunctionArn"].endswith(":function:otterwiki")


@wikibot_dev
def test_wikibot_stage_and_domain(deployment):
    (stage,) = deployment.of_type(STAGE)
    assert stage.inputs["name"] == "$default"
    (domain,) = deployment.of_type(DOMAIN)
    assert domain.inputs["domainName"] == "dev.wikibot.io"
    configuration = domain.inputs["domainNameConfiguration"]
    assert configuration["certificateArn"] == deployment.config_read["certificateArn"]
    assert configuration["endpointType"] == "REGIONAL"
    (mapping,) = deployment.of_type(MAPPING)
    assert mapping.inputs["domainName"] == "dev.wikibot.io"
    assert mapping.inputs["stage"] == "$default"
    assert mapping.inputs.get("apiMappingKey", "") == ""


@wikibot_dev
def test_wikibot_outputs(deployment):
    assert deployment.outputs["base_url"] == "https://dev.wikibot.io"
    assert deployment.outputs["resource_urls"] == {"/mcp": "https://dev.wikibot.io/mcp"}
    assert deployment.outputs["api_endpoint"] == (
        f"https://a1b2c3d4e5.execute-api.{REGION}.amazonaws.com"
    )
    assert sorted(deployment.config_read) == ["certificateArn", "mcpArtifact", "wikiFunctionArn"]
