//! No money as `f64`: the numbers of a normalized spec that the generators would turn into a
//! binary float, refused before they reach generated code.
//!
//! typify and progenitor make every `type: number` an `f64` unless the xtask maps it to an exact
//! type (see `codegen::EXACT_TYPES`): `format: decimal` becomes `json_decimal::JsonDecimal`. So
//! when a vendor turns an amount from `integer` into `number`, or a spec update drops our
//! `format: decimal`, the regenerated field is an `f64`, and the compiler's error in the facade
//! ("expected `f64`, found ...") invites exactly the wrong fix: converting the money to a float.
//! The fix is in the overlay. This check makes the xtask say so before anything is generated:
//!
//! - every `type: number` must state what it is: `format: decimal` (exact; money and every
//!   number money is computed from) or, for a number that is not money (a count, a rate), an
//!   explicit `format: double` or `float` added by an overlay action whose description says why;
//! - a number whose property name says money (`amount`, `price`, `total`, `vat`, `tax`, `fee`,
//!   `balance`, `cost`) must be `format: decimal` even when it states `double` or `float`.
//!
//! Integers (`type: integer`) are exact already: minor units stay integers.

use std::fmt;

use serde_json::Value;

use crate::{Provider, SpecKind};

/// Words that make a property name a money field, matched case-insensitively anywhere in it.
pub const MONEY_WORDS: &[&str] = &[
    "amount", "price", "total", "vat", "tax", "fee", "balance", "cost",
];

/// The formats that state "a binary float, deliberately" for a number that is not money.
pub const FLOAT_FORMATS: &[&str] = &["double", "float"];

/// One number the generators would make an `f64` although it must not be one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct F64Number {
    /// The provider (its folder under `specs/`).
    pub provider: &'static str,
    /// JSON pointer in the normalized spec (`generated/<provider>/openapi.normalized.json`).
    pub pointer: String,
    /// The schema's `format`, if any.
    pub format: Option<String>,
    /// Whether the property name says money.
    pub money_name: bool,
    /// The overlay target (JSONPath) that selects the schema in the overlay's input document.
    pub overlay_target: String,
}

impl fmt::Display for F64Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.provider;
        let what = match (&self.format, self.money_name) {
            (Some(format), true) => format!(
                "is a money field declared `type: number, format: {format}`, a binary float"
            ),
            (Some(format), false) => format!(
                "is `type: number` with `format: {format}`, which no generator reads as an exact \
                 number"
            ),
            (None, _) => "is `type: number` without `format: decimal`".to_owned(),
        };
        write!(
            f,
            "specs/{p}: {} {what}, so it would be generated as an f64, and money is never an f64 \
             here. Do not follow the compiler to an f64 in the facade: add `format: decimal` in \
             specs/{p}/overlay.json, an action {{\"target\": \"{}\", \"update\": {{\"format\": \
             \"decimal\"}}, \"description\": <the documented payload that shows the amount>}}; the \
             field is then generated as json_decimal::JsonDecimal and the facade's transformer \
             reads or writes it from Money",
            self.pointer, self.overlay_target
        )?;
        if !self.money_name {
            write!(
                f,
                ". If it is not money nor computed into money (a count, a rate), state that with \
                 `\"format\": \"double\"` in the same action instead, its description saying why"
            )?;
        }
        Ok(())
    }
}

/// Every number of `openapi` (a normalized spec of `provider`) that would become an `f64`
/// against the rules above, in document order.
pub fn check(provider: &Provider, openapi: &Value) -> Vec<F64Number> {
    let mut found = Vec::new();
    let root = json_schema_root(provider, openapi);
    walk(
        &Walk { provider, root },
        openapi,
        &mut Vec::new(),
        &mut found,
    );
    found
}

/// For a JSON Schema provider, the component name of the vendor schema's root: the schema our
/// endpoint's request body refers to (by the root's title).
fn json_schema_root<'a>(provider: &Provider, openapi: &'a Value) -> Option<&'a str> {
    let SpecKind::JsonSchema { .. } = provider.kind else {
        return None;
    };
    crate::spec::operations(openapi).find_map(|(_, _, operation)| {
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()?
            .strip_prefix("#/components/schemas/")
    })
}

struct Walk<'a> {
    provider: &'a Provider,
    root: Option<&'a str>,
}

/// Whether a schema is a number the generators would make an `f64` (whatever its name).
pub fn generated_as_f64(schema: &Value) -> bool {
    is_number(schema) && schema["format"].as_str() != Some("decimal")
}

fn is_number(schema: &Value) -> bool {
    match &schema["type"] {
        Value::String(kind) => kind == "number",
        Value::Array(kinds) => kinds.iter().any(|k| k == "number"),
        _ => false,
    }
}

/// Whether a property name says money.
pub fn is_money_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    MONEY_WORDS.iter().any(|word| lower.contains(word))
}

fn walk(ctx: &Walk<'_>, value: &Value, at: &mut Vec<String>, found: &mut Vec<F64Number>) {
    match value {
        Value::Object(map) => {
            if generated_as_f64(value) {
                let format = map.get("format").and_then(Value::as_str);
                let name = property_name(at);
                let money_name = name.is_some_and(is_money_name);
                let declared_float = format.is_some_and(|f| FLOAT_FORMATS.contains(&f));
                if !declared_float || money_name {
                    found.push(F64Number {
                        provider: ctx.provider.name,
                        pointer: pointer(at),
                        format: format.map(str::to_owned),
                        money_name,
                        overlay_target: overlay_target(ctx, at),
                    });
                }
            }
            for (key, child) in map {
                // Values, not schemas.
                if matches!(
                    key.as_str(),
                    "example" | "examples" | "default" | "enum" | "const"
                ) {
                    continue;
                }
                at.push(key.clone());
                walk(ctx, child, at, found);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                at.push(index.to_string());
                walk(ctx, item, at, found);
                at.pop();
            }
        }
        _ => {}
    }
}

/// The property a schema is the value of (`.../properties/<name>`), or the array property whose
/// elements it is (`.../properties/<name>/items`).
fn property_name(at: &[String]) -> Option<&str> {
    match at {
        [.., properties, name] if properties == "properties" => Some(name),
        [.., properties, name, items] if properties == "properties" && items == "items" => {
            Some(name)
        }
        _ => None,
    }
}

fn pointer(at: &[String]) -> String {
    at.iter()
        .map(|step| format!("/{}", step.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// JSONPath of the schema in the document the overlay applies to: the merged OpenAPI document,
/// or for a JSON Schema provider its vendor schema (the root is its title's component schema,
/// the others its `definitions`).
fn overlay_target(ctx: &Walk<'_>, at: &[String]) -> String {
    let mut steps: Vec<&str> = at.iter().map(String::as_str).collect();
    if let SpecKind::JsonSchema { .. } = ctx.provider.kind
        && let ["components", "schemas", name, rest @ ..] = steps.as_slice()
    {
        let name = *name;
        let rest = rest.to_vec();
        // The root schema is embedded under its title. Any other name is one of the schema's
        // `definitions` (or of our endpoint document, which is edited itself).
        steps = if Some(name) == ctx.root {
            rest
        } else {
            [vec!["definitions", name], rest].concat()
        };
    }
    let mut path = "$".to_owned();
    for step in steps {
        let plain = !step.is_empty()
            && step.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !step.starts_with(|c: char| c.is_ascii_digit());
        if step.parse::<usize>().is_ok() {
            path.push_str(&format!("[{step}]"));
        } else if plain {
            path.push('.');
            path.push_str(step);
        } else {
            path.push_str(&format!("['{}']", step.replace('\'', "\\'")));
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OPENAPI: Provider = Provider {
        name: "moyasar",
        kind: SpecKind::OpenApi {
            documents: &["openapi.json"],
        },
    };

    #[test]
    fn a_number_without_decimal_is_named_with_its_overlay_target() {
        let spec = json!({"components": {"schemas": {"RefundRequest": {"properties": {
            "amount": {"type": "number", "minimum": 1},
            "rate": {"type": "number", "format": "double"},
            "exact": {"type": "number", "format": "decimal"},
            "cents": {"type": "integer", "format": "int64"},
            "vatAmount": {"type": "number", "format": "float"}
        }}}}});
        let found = check(&OPENAPI, &spec);
        let pointers: Vec<&str> = found.iter().map(|f| f.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/components/schemas/RefundRequest/properties/amount",
                "/components/schemas/RefundRequest/properties/vatAmount"
            ]
        );
        let text = found[0].to_string();
        assert!(
            text.contains("$.components.schemas.RefundRequest.properties.amount"),
            "{text}"
        );
        assert!(text.contains("specs/moyasar/overlay.json"), "{text}");
        assert!(
            !found[1].to_string().contains("format\": \"double"),
            "{}",
            found[1]
        );
    }

    #[test]
    fn json_schema_targets_name_the_vendor_schema() {
        let provider = Provider {
            name: "openapp",
            kind: SpecKind::JsonSchema {
                schema: "s.json",
                endpoint: "e.json",
            },
        };
        let spec = json!({"paths": {"/r": {"post": {"requestBody": {"content": {"application/json":
            {"schema": {"$ref": "#/components/schemas/RefundRequest"}}}}}}},
            "components": {"schemas": {
            "RefundRequest": {"properties": {"amount": {"type": "number"}}},
            "RefundProduct": {"properties": {"refundedQuantity": {"type": "number"}}}
        }}});
        let targets: Vec<String> = check(&provider, &spec)
            .into_iter()
            .map(|f| f.overlay_target)
            .collect();
        assert_eq!(
            targets,
            [
                "$.definitions.RefundProduct.properties.refundedQuantity",
                "$.properties.amount"
            ]
        );
    }
}
