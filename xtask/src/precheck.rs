//! Rejects, with a message naming the operation, the specs that would make progenitor 0.15.1
//! panic instead of returning an error.
//!
//! progenitor builds one Rust type for an operation's success responses and one for its error
//! responses, and asserts (`assert!(response_types.len() <= 1)` in `extract_responses`) that
//! each group has a single body type, counting "no body" and "non-JSON body" as types of their
//! own. It also needs an `operationId` on every operation.
//!
//! Body-less error statuses beside a bodied one (AfterPay documents 401 and 500 without a body,
//! 400 with one) stay in the normalized spec, where the surface, the constraints and the change
//! report see them; [`for_progenitor`] drops them from progenitor's copy only, so they reach the
//! generated client as undocumented statuses, which is what progenitor would make of them.

use std::collections::BTreeSet;

use anyhow::{Result, bail};
use serde_json::Value;

use crate::spec::operations;

/// The body kind progenitor would derive for one response.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum BodyKind {
    /// A JSON body of this schema (compared as canonical JSON text).
    Json(String),
    /// A body of some other media type.
    Raw,
    /// No body.
    None,
}

impl std::fmt::Display for BodyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyKind::Json(schema) => write!(f, "JSON {schema}"),
            BodyKind::Raw => write!(f, "a non-JSON body"),
            BodyKind::None => write!(f, "no body"),
        }
    }
}

/// Progenitor's copy of a normalized spec: body-less error statuses dropped where the same
/// operation has a bodied one.
pub fn for_progenitor(openapi: &Value) -> Value {
    let mut copy = openapi.clone();
    if let Some(paths) = copy["paths"].as_object_mut() {
        for item in paths.values_mut() {
            if let Some(item) = item.as_object_mut() {
                for operation in item.values_mut() {
                    if operation.get("responses").is_some() {
                        *operation = without_bodyless_errors(operation.take());
                    }
                }
            }
        }
    }
    copy
}

fn without_bodyless_errors(mut operation: Value) -> Value {
    let is_error = |status: &str| status.starts_with('4') || status.starts_with('5');
    if let Some(responses) = operation["responses"].as_object_mut() {
        let bodied_error = responses
            .iter()
            .any(|(status, r)| is_error(status) && body_kind(r) != BodyKind::None);
        if bodied_error {
            responses.retain(|status, r| !(is_error(status) && body_kind(r) == BodyKind::None));
        }
    }
    operation
}

/// Checks every operation of an OpenAPI document.
pub fn check(openapi: &Value) -> Result<()> {
    let mut problems = Vec::new();
    for (method, path, operation) in operations(openapi) {
        let name = match operation["operationId"].as_str() {
            Some(id) => format!("{id} ({} {path})", method.to_uppercase()),
            None => {
                problems.push(format!(
                    "{} {path}: no operationId (progenitor names methods after it)",
                    method.to_uppercase()
                ));
                continue;
            }
        };
        let mut success = BTreeSet::new();
        let mut error = BTreeSet::new();
        let operation = &without_bodyless_errors(operation.clone());
        for (status, response) in operation["responses"].as_object().into_iter().flatten() {
            let kind = body_kind(response);
            if status.starts_with('2') || status == "default" {
                success.insert(kind.clone());
            }
            if status.starts_with('4') || status.starts_with('5') || status == "default" {
                error.insert(kind);
            }
        }
        for (group, kinds) in [("success", &success), ("error", &error)] {
            if kinds.len() > 1 {
                let listed: Vec<String> = kinds.iter().map(ToString::to_string).collect();
                problems.push(format!(
                    "{name}: its {group} responses have {} different body types ({}); \
                         progenitor 0.15.1 asserts one per operation, so give them one schema \
                         (or drop the body-less ones) in the overlay",
                    kinds.len(),
                    listed.join(" / ")
                ));
            }
        }
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    Ok(())
}

fn body_kind(response: &Value) -> BodyKind {
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        return BodyKind::None;
    };
    if content.is_empty() {
        return BodyKind::None;
    }
    match content
        .iter()
        .find(|(media, _)| media.as_str() == "application/json" || media.ends_with("+json"))
    {
        Some((_, media)) => match media.get("schema") {
            Some(schema) => BodyKind::Json(schema.to_string()),
            None => BodyKind::Raw,
        },
        None => BodyKind::Raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(responses: Value) -> Value {
        json!({"openapi": "3.0.0", "paths": {"/r": {"post": {"operationId": "refund", "responses": responses}}}})
    }

    #[test]
    fn several_error_schemas_are_rejected_naming_the_operation() {
        let err = check(&spec(json!({
            "200": {"content": {"application/json": {"schema": {"type": "object"}}}},
            "400": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}},
            "401": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/B"}}}}
        })))
        .unwrap_err()
        .to_string();
        assert!(err.contains("refund (POST /r)"), "{err}");
        assert!(
            err.contains("error responses have 2 different body types"),
            "{err}"
        );
    }

    #[test]
    fn a_bodyless_error_next_to_a_bodied_one_is_left_out_for_progenitor() {
        let spec = spec(json!({
            "200": {"content": {"application/json": {"schema": {"type": "object"}}}},
            "400": {"content": {"application/json": {"schema": {"type": "array"}}}},
            "401": {"description": "no body"}
        }));
        check(&spec).expect("progenitor sees one error type");
        let responses = &for_progenitor(&spec)["paths"]["/r"]["post"]["responses"];
        assert!(responses.get("401").is_none() && responses.get("400").is_some());
    }

    #[test]
    fn a_body_next_to_no_body_among_successes_is_rejected() {
        let err = check(&spec(json!({
            "200": {"content": {"application/json": {"schema": {"type": "object"}}}},
            "204": {"description": "no body"}
        })))
        .unwrap_err()
        .to_string();
        assert!(err.contains("no body"), "{err}");
    }

    #[test]
    fn several_success_schemas_are_rejected() {
        let err = check(&spec(json!({
            "200": {"content": {"application/json": {"schema": {"type": "object"}}}},
            "201": {"content": {"application/json": {"schema": {"type": "string"}}}}
        })))
        .unwrap_err()
        .to_string();
        assert!(err.contains("success responses have 2"), "{err}");
    }

    #[test]
    fn one_type_per_group_passes() {
        check(&spec(json!({
            "200": {"content": {"application/json": {"schema": {"type": "object"}}}},
            "400": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/E"}}}},
            "500": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/E"}}}}
        })))
        .unwrap();
    }
}
