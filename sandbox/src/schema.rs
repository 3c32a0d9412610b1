//! Request bodies checked as a whole against the provider's request schema.
//!
//! Each refund route's body is validated against the JSON request body schema its operation has
//! in the provider's normalized OpenAPI document (`<provider>_api::NORMALIZED_OPENAPI` unless
//! the provider's settings say otherwise, e.g. [`crate::optty::Settings::spec`]), with the `jsonschema` crate as JSON Schema
//! draft 4, which OpenAPI 3.0's schema objects follow: the same document and the same reading as
//! the facade's agreement test (`facade/tests/schema_agreement.rs`), with `#/components/...`
//! references resolved inside the document itself. The validator is compiled once, when the
//! server starts, and runs on the request as sent, before any business rule. Each provider words
//! the [`Violation`]s in its own 400 shape, naming the field; a keyword or a field a new spec
//! adds is enforced with no edit here.
//!
//! `format` is asserted: draft 4's own formats, and `uuid` (OpenAPI's, not draft 4's) as the
//! hyphenated 36-character form. Formats nobody defines (`decimal`, `int64`) stay annotations.
//!
//! # Numbers
//!
//! `jsonschema` reads an instance as a `serde_json::Value`, whose numbers are `i64`/`u64` or
//! `f64` (serde_json's `arbitrary_precision` would change number handling for every crate built
//! with the sandbox). Integers and every bound written as an integer compare exactly; a number
//! written with a fraction or an exponent goes through `f64`, which can be wrong on a decimal
//! with more digits than an `f64` holds (`1.0000000000000001` reads as `1`, a multiple of
//! `0.01`; `-1e-400` reads as `-0`, not below `minimum: 0`), and draft 4's `type: integer` holds
//! for `1e20` or `99999999999999999999`, which are no `i64`. So the providers keep exact checks,
//! on the text of the number as sent, where that matters: each is commented as such.

use std::collections::BTreeMap;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use rust_decimal::Decimal;
use serde_json::Value as Json;

use crate::wire;

/// The compiled JSON request body schema of one operation.
pub(crate) struct RequestSchema {
    validator: jsonschema::Validator,
    /// The document, its root the body schema, for [`RequestSchema::number_keyword`].
    document: Json,
}

impl std::fmt::Debug for RequestSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSchema").finish_non_exhaustive()
    }
}

/// Whether `s` is a UUID in its hyphenated 36-character form (OpenAPI's `format: uuid`).
fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::parse_str(s).is_ok()
}

/// `/orders/{order_reference}/refund` and `/orders/{orderReference}/refund` alike: the
/// parameter names are the router's or the spec's own.
fn same_template(a: &str, b: &str) -> bool {
    let segments = |path: &str| -> Vec<String> {
        path.split('/')
            .map(|s| {
                if s.starts_with('{') && s.ends_with('}') {
                    "{}".to_owned()
                } else {
                    s.to_owned()
                }
            })
            .collect()
    };
    segments(a) == segments(b)
}

impl RequestSchema {
    /// [`RequestSchema::compile`] for a provider's server: the error is an `InvalidInput`
    /// naming the provider.
    pub(crate) fn for_route(
        provider: &str,
        openapi: &str,
        method: &str,
        route: &str,
    ) -> std::io::Result<Self> {
        Self::compile(openapi, method, route).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{provider}'s request schema: {e}"),
            )
        })
    }

    /// Compiles the `application/json` request body schema of `method` `route` (a path template;
    /// parameter names need not match the spec's) in `openapi`, a normalized OpenAPI 3.0 document
    /// as JSON text. The error says what is missing or invalid.
    pub(crate) fn compile(openapi: &str, method: &str, route: &str) -> Result<Self, String> {
        let mut document: Json =
            serde_json::from_str(openapi).map_err(|e| format!("the spec is not JSON: {e}"))?;
        let operation = document["paths"]
            .as_object()
            .and_then(|paths| paths.iter().find(|(path, _)| same_template(path, route)))
            .map(|(_, item)| &item[method])
            .filter(|op| op.is_object())
            .ok_or_else(|| format!("the spec has no operation {method} {route}"))?;
        let body = operation["requestBody"]["content"]["application/json"]["schema"].clone();
        if !body.is_object() {
            return Err(format!(
                "{method} {route} has no application/json request body schema"
            ));
        }
        // The body schema becomes the root: `$ref` (draft 4 ignores its siblings) or its own
        // keywords; every `#/components/...` reference resolves in the document around it.
        match body.get("$ref") {
            Some(reference) => document["$ref"] = reference.clone(),
            None => {
                let Json::Object(root) = &mut document else {
                    unreachable!("indexed as an object above")
                };
                root.retain(|key, _| key == "components");
                if let Json::Object(keywords) = body {
                    root.extend(keywords);
                }
            }
        }
        let validator = jsonschema::draft4::options()
            .should_validate_formats(true)
            .with_format("uuid", is_uuid)
            .build(&document)
            .map_err(|e| format!("{method} {route}: the request schema does not compile: {e}"))?;
        Ok(RequestSchema {
            validator,
            document,
        })
    }

    /// The number a keyword (`multipleOf`, `maximum`) has for the property at `path` (object
    /// keys from the body), through `$ref` and `allOf`, read as the decimal the spec writes, for
    /// a provider's exact check of what the validator judges through f64.
    pub(crate) fn number_keyword(&self, path: &[&str], keyword: &str) -> Option<Decimal> {
        let mut schemas = self.resolve(&self.document);
        for key in path {
            schemas = schemas
                .iter()
                .filter_map(|s| s.get("properties").and_then(|p| p.get(*key)))
                .flat_map(|s| self.resolve(s))
                .collect();
        }
        schemas
            .iter()
            .filter_map(|s| s.get(keyword))
            .find_map(|n| n.as_number())
            .and_then(|n| json_decimal::parse_number(&n.to_string()).ok())
    }

    /// `schema` and what it stands for: its `$ref` target and its `allOf` members, recursively
    /// (depth-bounded against reference cycles).
    fn resolve<'a>(&'a self, schema: &'a Json) -> Vec<&'a Json> {
        fn walk<'a>(document: &'a Json, schema: &'a Json, depth: u8, out: &mut Vec<&'a Json>) {
            if depth == 0 {
                return;
            }
            out.push(schema);
            if let Some(target) = schema
                .get("$ref")
                .and_then(Json::as_str)
                .and_then(|r| r.strip_prefix('#'))
                .and_then(|pointer| document.pointer(pointer))
            {
                walk(document, target, depth - 1, out);
            }
            for member in schema
                .get("allOf")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                walk(document, member, depth - 1, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.document, schema, 16, &mut out);
        out
    }

    /// Every way `body` breaks the schema, in the validator's order; empty when it conforms.
    pub(crate) fn violations(&self, body: &wire::Value) -> Vec<Violation> {
        let instance = body.to_json();
        let mut out = Vec::new();
        for error in self.validator.iter_errors(&instance) {
            let at: Vec<Step> = error
                .instance_path()
                .iter()
                .map(|segment| match segment {
                    LocationSegment::Property(name) => Step::Key(name.into_owned()),
                    LocationSegment::Index(i) => Step::Index(i),
                })
                .collect();
            let here = |problem| Violation {
                field: Field(at.clone()),
                problem,
            };
            let child = |name: &str, problem| {
                let mut steps = at.clone();
                steps.push(Step::Key(name.to_owned()));
                Violation {
                    field: Field(steps),
                    problem,
                }
            };
            match error.kind() {
                ValidationErrorKind::Required { property } => {
                    let name = property
                        .as_str()
                        .map_or_else(|| property.to_string(), str::to_owned);
                    out.push(child(&name, Problem::Required));
                }
                ValidationErrorKind::AdditionalProperties { unexpected } => {
                    out.extend(
                        unexpected
                            .iter()
                            .map(|name| child(name, Problem::NotAllowed)),
                    );
                }
                kind => out.push(here(problem(kind, &error.to_string()))),
            }
        }
        out
    }
}

/// What a [`Violation`] is, in words each provider renders its own way.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Problem {
    /// A required property is absent.
    Required,
    /// A property `additionalProperties: false` refuses.
    NotAllowed,
    /// Not of the schema's type(s): `string`, `number`, `integer`, `boolean`, `object`, `array`,
    /// `null`.
    Type(Vec<&'static str>),
    /// Longer than `maxLength` (code points).
    MaxLength(u64),
    /// Shorter than `minLength`.
    MinLength(u64),
    /// More items than `maxItems`.
    MaxItems(u64),
    /// Fewer items than `minItems`.
    MinItems(u64),
    /// Not one of `enum` (strings as they are, other values as JSON).
    Enum(Vec<String>),
    /// Above `maximum` (`exclusive`: at or above it).
    Maximum { limit: String, exclusive: bool },
    /// Below `minimum` (`exclusive`: at or below it).
    Minimum { limit: String, exclusive: bool },
    /// Not a multiple of `multipleOf`.
    MultipleOf(String),
    /// Not matching the regular expression of `pattern`.
    Pattern(String),
    /// Not of the named `format`.
    Format(String),
    /// Anything else, in the validator's words.
    Other(String),
}

fn problem(kind: &ValidationErrorKind, message: &str) -> Problem {
    match kind {
        ValidationErrorKind::Type { kind } => Problem::Type(match kind {
            TypeKind::Single(t) => vec![t.as_str()],
            TypeKind::Multiple(set) => set.iter().map(|t| t.as_str()).collect(),
        }),
        ValidationErrorKind::MaxLength { limit } => Problem::MaxLength(*limit),
        ValidationErrorKind::MinLength { limit } => Problem::MinLength(*limit),
        ValidationErrorKind::MaxItems { limit } => Problem::MaxItems(*limit),
        ValidationErrorKind::MinItems { limit } => Problem::MinItems(*limit),
        ValidationErrorKind::Enum { options } => Problem::Enum(match options.as_ref() {
            Json::Array(options) => options
                .iter()
                .map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_owned))
                .collect(),
            other => vec![other.to_string()],
        }),
        ValidationErrorKind::Maximum { limit } => Problem::Maximum {
            limit: limit.to_string(),
            exclusive: false,
        },
        ValidationErrorKind::ExclusiveMaximum { limit } => Problem::Maximum {
            limit: limit.to_string(),
            exclusive: true,
        },
        ValidationErrorKind::Minimum { limit } => Problem::Minimum {
            limit: limit.to_string(),
            exclusive: false,
        },
        ValidationErrorKind::ExclusiveMinimum { limit } => Problem::Minimum {
            limit: limit.to_string(),
            exclusive: true,
        },
        ValidationErrorKind::MultipleOf { multiple_of } => {
            Problem::MultipleOf(multiple_of.to_string())
        }
        ValidationErrorKind::Pattern { pattern } => Problem::Pattern(pattern.clone()),
        ValidationErrorKind::Format { format } => Problem::Format(format.clone()),
        _ => Problem::Other(message.to_owned()),
    }
}

/// One step of a path into the request body.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Where in the request body a violation is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field(Vec<Step>);

impl Field {
    /// `items[0].productId`; empty for the body itself.
    pub(crate) fn dotted(&self) -> String {
        let mut out = String::new();
        for step in &self.0 {
            match step {
                Step::Key(key) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                }
                Step::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    /// Whether this is the body itself.
    pub(crate) fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

/// One way a request body breaks the schema.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Violation {
    /// The field at fault (for [`Problem::Required`] and [`Problem::NotAllowed`], the property
    /// itself, not the object that lacks or has it).
    pub field: Field,
    /// What is wrong with it.
    pub problem: Problem,
}

/// "a, b or c" for the types of [`Problem::Type`].
pub(crate) fn either(types: &[&str]) -> String {
    match types {
        [] => String::new(),
        [only] => (*only).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// "a string or an integer": the types of [`Problem::Type`], each with its article.
pub(crate) fn a_type_of(types: &[&str]) -> String {
    let with_article: Vec<String> = types
        .iter()
        .map(|t| match *t {
            "integer" | "object" | "array" => format!("an {t}"),
            _ => format!("a {t}"),
        })
        .collect();
    let with_article: Vec<&str> = with_article.iter().map(String::as_str).collect();
    either(&with_article)
}

/// The violations' words grouped by dotted field, fields sorted (the shape Moyasar answers).
pub(crate) fn by_field(
    violations: &[Violation],
    word: impl Fn(&Problem) -> String,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for v in violations {
        out.entry(v.field.dotted())
            .or_default()
            .push(word(&v.problem));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> wire::Value {
        wire::from_slice(text.as_bytes()).unwrap()
    }

    #[test]
    fn finds_the_operation_whatever_its_parameter_names() {
        assert!(
            RequestSchema::compile(
                optty_api::NORMALIZED_OPENAPI,
                "post",
                "/orders/{order_reference}/refund"
            )
            .is_ok()
        );
        let missing = RequestSchema::compile(optty_api::NORMALIZED_OPENAPI, "post", "/nope");
        assert!(missing.unwrap_err().contains("no operation post /nope"));
    }

    #[test]
    fn names_fields_as_paths() {
        let schema = RequestSchema::compile(
            afterpay_api::NORMALIZED_OPENAPI,
            "post",
            "/api/v3/orders/{order_number}/refunds",
        )
        .unwrap();
        let v = schema.violations(&body(
            r#"{"items":[{"productId":1,"description":"d","netUnitPrice":1,"grossUnitPrice":1,"quantity":1,"vatPercent":0}]}"#,
        ));
        let found: Vec<(String, Problem)> = v
            .into_iter()
            .map(|v| (v.field.dotted(), v.problem))
            .collect();
        assert!(found.contains(&("captureNumber".into(), Problem::Required)));
        assert!(found.contains(&("items[0].vatAmount".into(), Problem::Required)));
        assert!(found.contains(&("items[0].productId".into(), Problem::Type(vec!["string"]))));
        assert_eq!(found.len(), 3, "{found:?}");
    }

    #[test]
    fn reads_a_keyword_through_refs_and_all_of() {
        let schema =
            RequestSchema::compile(optty_api::NORMALIZED_OPENAPI, "post", "/orders/{x}/refund")
                .unwrap();
        assert_eq!(
            schema
                .number_keyword(&["refundAmount", "amount"], "multipleOf")
                .map(|d| d.to_string()),
            Some("0.01".into())
        );
        assert_eq!(
            schema.number_keyword(&["refundAmount", "amount"], "maximum"),
            None
        );
    }

    #[test]
    fn formats_are_asserted() {
        let schema = RequestSchema::compile(
            moyasar_api::NORMALIZED_OPENAPI,
            "post",
            "/v1/orders/{x}/refund",
        )
        .unwrap();
        let uuid = uuid::Uuid::new_v4();
        assert!(
            schema
                .violations(&body(&format!(
                    r#"{{"amount":1,"transaction_id":"{uuid}"}}"#
                )))
                .is_empty()
        );
        let v = schema.violations(&body(&format!(
            r#"{{"amount":1,"transaction_id":"{}"}}"#,
            uuid.simple()
        )));
        assert!(
            v.iter()
                .any(|v| v.problem == Problem::Format("uuid".into())),
            "{v:?}"
        );
    }
}
