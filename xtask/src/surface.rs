//! A plain-text rendering of a normalized spec's API surface, for snapshot tests: every
//! operation and webhook (method, path or name, example name, parameters, body, responses) and
//! every schema's fields with type, required/optional and constraints. A spec change becomes a
//! readable snapshot diff.

use std::fmt::Write;

use serde_json::Value;

use crate::spec::{operations, webhooks};

/// Number of operations in an OpenAPI document.
pub fn operation_count(openapi: &Value) -> usize {
    operations(openapi).count()
}

/// Number of named schemas in an OpenAPI document.
pub fn schema_count(openapi: &Value) -> usize {
    openapi
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .map_or(0, |schemas| schemas.len())
}

/// Renders the surface of an OpenAPI document.
pub fn render(openapi: &Value) -> String {
    let mut out = String::new();
    if let Some(security) = openapi.get("security") {
        let _ = writeln!(out, "security: {}", security_of(security));
    }
    out.push_str("operations:\n");
    for (method, path, operation) in operations(openapi) {
        render_operation(&mut out, method, path, operation);
    }
    let mut hooks = webhooks(openapi).peekable();
    if hooks.peek().is_some() {
        out.push_str("webhooks (sent by the provider to us):\n");
        for (method, name, operation) in hooks {
            render_operation(&mut out, method, name, operation);
        }
    }
    out.push_str("schemas:\n");
    let schemas = openapi
        .pointer("/components/schemas")
        .and_then(Value::as_object);
    for (name, schema) in schemas.into_iter().flatten() {
        let _ = writeln!(out, "  {name}: {}{}", type_of(schema), constraints(schema));
        fields(&mut out, schema, 4);
    }
    out
}

/// One operation (or webhook): its line, security, parameters, body and responses.
fn render_operation(out: &mut String, method: &str, path: &str, operation: &Value) {
    let id = operation["operationId"]
        .as_str()
        .unwrap_or("<no operationId>");
    let examples = operation[crate::codegen::EXAMPLE_NAME]
        .as_str()
        .map(|name| format!(" examples: {name}"))
        .unwrap_or_default();
    let _ = writeln!(out, "  {} {path} ({id}){examples}", method.to_uppercase());
    if let Some(security) = operation.get("security") {
        let _ = writeln!(out, "    security: {}", security_of(security));
    }
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "    param {} {}: {}{}",
            parameter["in"].as_str().unwrap_or("?"),
            parameter["name"].as_str().unwrap_or("?"),
            type_of(&parameter["schema"]),
            if parameter["required"] == true {
                " (required)"
            } else {
                ""
            }
        );
    }
    if let Some(body) = operation.get("requestBody") {
        for (media, content) in body["content"].as_object().into_iter().flatten() {
            let _ = writeln!(
                out,
                "    body {media}: {}{}",
                type_of(&content["schema"]),
                if body["required"] == true {
                    " (required)"
                } else {
                    " (optional)"
                }
            );
        }
    }
    for (status, response) in operation["responses"].as_object().into_iter().flatten() {
        let bodies: Vec<String> = response["content"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(media, content)| format!("{media} {}", type_of(&content["schema"])))
            .collect();
        let body = if bodies.is_empty() {
            "no body".to_owned()
        } else {
            bodies.join(", ")
        };
        let _ = writeln!(out, "    {status}: {body}");
    }
}

/// The properties of an object schema, one line each, with inline objects (and arrays of
/// them) expanded below their property, indented.
fn fields(out: &mut String, schema: &Value, indent: usize) {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (field, property) in schema["properties"].as_object().into_iter().flatten() {
        let presence = if required.contains(&field.as_str()) {
            "required"
        } else {
            "optional"
        };
        let _ = writeln!(
            out,
            "{:indent$}{field}: {} {presence}{}",
            "",
            type_of(property),
            constraints(property)
        );
        let inline = if property.get("properties").is_some() {
            Some(property)
        } else {
            Some(&property["items"]).filter(|items| items.get("properties").is_some())
        };
        if let Some(inline) = inline {
            fields(out, inline, indent + 2);
        }
    }
}

/// `none` for `security: []`, else the scheme names.
fn security_of(security: &Value) -> String {
    let names: Vec<&str> = security
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|requirement| requirement.keys().map(String::as_str))
        .collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// `string`, `number(decimal)`, `array<Item>`, `Name` for a reference, `any` without a type.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        return reference.rsplit('/').next().unwrap_or(reference).to_owned();
    }
    if let Some(all_of) = schema["allOf"].as_array() {
        let parts: Vec<String> = all_of.iter().map(type_of).collect();
        return parts.join(" & ");
    }
    let base = match schema["type"].as_str() {
        Some("array") => format!("array<{}>", type_of(&schema["items"])),
        Some(kind) => kind.to_owned(),
        None => "any".to_owned(),
    };
    match schema["format"].as_str() {
        Some(format) => format!("{base}({format})"),
        None => base,
    }
}

/// Every keyword that changes the generated code, the generated constraints or validation, in
/// the order the surface shows them (besides `type` and `format`, shown as the type). `cargo
/// xtask diff` compares each of them.
pub const KEYWORDS: &[&str] = &[
    "nullable",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "enum",
    "const",
    "default",
    "additionalProperties",
    "readOnly",
    "writeOnly",
];

/// The validation keywords of a schema, in a fixed order.
fn constraints(schema: &Value) -> String {
    let mut parts = Vec::new();
    for keyword in KEYWORDS {
        if let Some(value) = schema.get(*keyword) {
            let shown = match value {
                Value::Object(_) => type_of(value),
                other => other.to_string(),
            };
            parts.push(format!("{keyword}={shown}"));
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" [{}]", parts.join(", "))
    }
}
