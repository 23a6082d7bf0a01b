//! The OpenAPI 3.0.1 document of one environment, in the shapes API Gateway's HTTP API import
//! accepts. Built as a JSON value, not through a template, so every string is escaped by the
//! JSON serializer.

use serde_json::{Map, Value, json};

use crate::model::{EnvModel, Model, RouteModel};

/// Integration URIs hold placeholders for what is unknown before deployment. The Pulumi program
/// fills them and exports the filled document.
pub fn invoke_uri_placeholder(backend: &str) -> String {
    format!(
        "arn:aws:apigateway:${{region}}:lambda:path/2015-03-31/functions/\
         ${{backend.{backend}.arn}}/invocations"
    )
}

pub fn openapi_document(model: &Model, env: &EnvModel) -> Value {
    let mut paths = Map::new();
    for route in &model.routes {
        let (path_key, operation_key) = path_and_operation(route);
        let item = paths.entry(path_key.clone()).or_insert_with(|| json!({}));
        let item = item.as_object_mut().expect("path items are objects");
        let parameters = path_parameters(&path_key);
        if !parameters.is_empty() {
            item.insert("parameters".into(), Value::Array(parameters));
        }
        item.insert(operation_key, operation(model, route));
    }

    let mut integrations = Map::new();
    for b in &model.backends {
        integrations.insert(
            b.name.clone(),
            json!({
                "type": "aws_proxy",
                "httpMethod": "POST",
                "uri": invoke_uri_placeholder(&b.name),
                "payloadFormatVersion": "2.0",
                "connectionType": "INTERNET",
                "timeoutInMillis": b.timeout_seconds.min(30) * 1000,
            }),
        );
    }

    let mut security_schemes = Map::new();
    for a in &model.authorizers {
        security_schemes.insert(
            a.name.clone(),
            json!({
                "type": "oauth2",
                "flows": {},
                "x-amazon-apigateway-authorizer": {
                    "type": "jwt",
                    "identitySource": a.identity_source,
                    "jwtConfiguration": {
                        "issuer": a.issuer_by_env.get(&env.name).cloned().unwrap_or_default(),
                        "audience": a.audience_by_env.get(&env.name).cloned().unwrap_or_default(),
                    },
                },
            }),
        );
    }

    let mut components = Map::new();
    if !security_schemes.is_empty() {
        components.insert("securitySchemes".into(), Value::Object(security_schemes));
    }
    components.insert("x-amazon-apigateway-integrations".into(), Value::Object(integrations));

    let mut info = Map::new();
    info.insert("title".into(), Value::String(model.api.name.clone()));
    if let Some(description) = &model.api.description {
        info.insert("description".into(), Value::String(description.clone()));
    }
    info.insert("version".into(), Value::String(model.source.digest[..12].to_string()));

    json!({
        "openapi": "3.0.1",
        "info": info,
        "servers": [{ "url": env.origin, "description": format!("environment {}", env.name) }],
        "paths": paths,
        "components": components,
        "x-amazon-apigateway-importexport-version": "1.0",
    })
}

fn path_and_operation(route: &RouteModel) -> (String, String) {
    match (&route.path, &route.method) {
        (Some(path), Some(method)) if method == "ANY" => {
            (path.clone(), "x-amazon-apigateway-any-method".into())
        }
        (Some(path), Some(method)) => (path.clone(), method.to_lowercase()),
        _ => ("/$default".into(), "x-amazon-apigateway-any-method".into()),
    }
}

fn operation(model: &Model, route: &RouteModel) -> Value {
    let mut op = Map::new();
    if route.path.is_none() {
        op.insert("isDefaultRoute".into(), Value::Bool(true));
    }
    op.insert("summary".into(), Value::String(route.purpose.clone()));
    op.insert(
        "responses".into(),
        json!({ "default": { "description": format!("answered by backend {}", route.backend) } }),
    );
    if let Some(authorizer) = &route.authorizer {
        op.insert("security".into(), json!([{ authorizer.clone(): [] }]));
    }
    op.insert(
        "x-amazon-apigateway-integration".into(),
        json!({
            "$ref": format!("#/components/x-amazon-apigateway-integrations/{}", route.backend)
        }),
    );
    op.insert("x-specgen-backend".into(), Value::String(route.backend.clone()));
    op.insert("x-specgen-auth".into(), Value::String(route.auth.to_string()));
    let _ = model;
    Value::Object(op)
}

/// Path-level parameters for every template in the path, named as AWS exports them (`proxy+`).
fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } })
        })
        .collect()
}
