"""Every generated OpenAPI document is valid OpenAPI 3.0, both as specgen writes it (with
placeholders for deployment values) and as a deployment fills it in."""

import json
import re
from pathlib import Path

import pytest
from openapi_spec_validator import OpenAPIV30SpecValidator, validate

from conftest import PLACEHOLDER, fill_placeholders, lambda_arn, load_json, openapi_documents

DOCUMENTS = openapi_documents()
documents = pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: f"{p.parent.name}/{p.name}")

INVOKE_URI = re.compile(
    r"arn:aws:apigateway:\$\{region\}:lambda:path/2015-03-31/functions/"
    r"\$\{backend\.([^}]+)\.arn\}/invocations"
)


def test_documents_exist():
    assert DOCUMENTS, "no generated/*/openapi.*.json"


@documents
def test_valid_as_written(path: Path):
    document = load_json(path)
    assert document["openapi"] == "3.0.1"
    validate(document, cls=OpenAPIV30SpecValidator)


@documents
def test_valid_when_filled(path: Path):
    filled = fill_placeholders(path.read_text(encoding="utf-8"), lambda b: lambda_arn(b))
    assert not PLACEHOLDER.search(filled)
    validate(json.loads(filled), cls=OpenAPIV30SpecValidator)


@documents
def test_integrations_use_the_agreed_placeholders(path: Path):
    """Each integration's URI is the invoke ARN template the Pulumi program knows how to fill,
    and names a backend that some operation routes to."""
    document = load_json(path)
    integrations = document["components"]["x-amazon-apigateway-integrations"]
    operation_backends = {
        operation["x-specgen-backend"]
        for item in document["paths"].values()
        for name, operation in item.items()
        if isinstance(operation, dict) and "x-amazon-apigateway-integration" in operation
    }
    assert integrations, "no shared integrations"
    for name, integration in integrations.items():
        assert integration["type"] == "aws_proxy", name
        assert integration["httpMethod"] == "POST", name
        assert integration["payloadFormatVersion"] == "2.0", name
        match = INVOKE_URI.fullmatch(integration["uri"])
        assert match, f"{name}: unexpected uri {integration['uri']}"
        assert match.group(1) in operation_backends, name
