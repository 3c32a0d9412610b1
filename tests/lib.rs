//! Helpers for the workspace tests: where the documented payloads live, JSON equivalence that
//! compares numbers by exact decimal value, and the documented payloads' round trip that each
//! generated crate's `tests/examples.rs` (written by `cargo xtask generate`) runs.

use std::path::{Path, PathBuf};

use rust_decimal::Decimal;
use serde_json::Value;

/// `specs/` of this workspace.
pub fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs")
}

/// One documented payload: `specs/<provider>/examples/<operation>.<part>[.<label>].json`, where
/// `<operation>` is the operation's `x-example-name` (or its operationId) in the provider's spec
/// and `<part>` is `request` or a response status as the spec keys it (`200`, `2XX`).
#[derive(Debug)]
pub struct Example {
    /// Provider folder name.
    pub provider: String,
    /// The operation's example name (`refund`, `token`, `details`, `get-refunds`...).
    pub operation: String,
    /// `request` or an HTTP status (a code, or a range such as `2XX`).
    pub kind: String,
    /// File path.
    pub path: PathBuf,
    /// File contents.
    pub text: String,
}

/// Every example file of every provider, sorted by path.
pub fn examples() -> Vec<Example> {
    let mut found = Vec::new();
    for provider in std::fs::read_dir(specs_dir()).unwrap() {
        let provider = provider.unwrap().path();
        let dir = provider.join("examples");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|ext| ext != "json") {
                continue;
            }
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let mut parts = name.split('.');
            let operation = parts.next().unwrap().to_owned();
            let kind = parts
                .next()
                .expect("<operation>.<kind>[.<label>].json")
                .to_owned();
            found.push(Example {
                provider: provider.file_name().unwrap().to_str().unwrap().to_owned(),
                operation,
                kind,
                text: std::fs::read_to_string(&path).unwrap(),
                path,
            });
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// JSON equality where numbers compare by exact decimal value (`1` == `1.0`, `10.00` == `10`)
/// and a `null` member equals an absent one (the generated types skip `None`).
pub fn equivalent(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let parse = |n: &serde_json::Number| {
                let text = n.to_string();
                Decimal::from_str_exact(&text).or_else(|_| Decimal::from_scientific(&text))
            };
            match (parse(x), parse(y)) {
                (Ok(x), Ok(y)) => x == y,
                _ => x == y,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equivalent(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().all(|key| {
                let a = x.get(key).unwrap_or(&Value::Null);
                let b = y.get(key).unwrap_or(&Value::Null);
                equivalent(a, b)
            })
        }
        _ => a == b,
    }
}

/// A generated crate's `roundtrip_example`: (operation, part, JSON) to the re-encoded JSON, or
/// `None` when the spec describes no body for that operation and part.
pub type Roundtrip = fn(&str, &str, &str) -> Option<Result<String, serde_json::Error>>;

/// The example as documented and as decoded and re-encoded by the generated type of its
/// (operation, part).
fn decode(example: &Example, roundtrip: Roundtrip) -> Result<(Value, Value), String> {
    let original: Value = serde_json::from_str(&example.text).map_err(|e| e.to_string())?;
    let encoded = roundtrip(&example.operation, &example.kind, &example.text).ok_or_else(|| {
        format!(
            "the spec describes no body for operation {:?}, part {:?} (an operationId or \
             x-example-name, and `request` or a response status)",
            example.operation, example.kind
        )
    })?;
    let encoded = encoded.map_err(|e| format!("does not decode: {e}"))?;
    let encoded: Value = serde_json::from_str(&encoded).map_err(|e| e.to_string())?;
    Ok((original, encoded))
}

/// Every documented payload of `specs/<provider>/examples/` decodes through `roundtrip` (the
/// provider's generated crate's `roundtrip_example`) and re-encodes to an equivalent JSON value;
/// panics with every failure, or when the provider has no example at all.
pub fn assert_examples_roundtrip(provider: &str, roundtrip: Roundtrip) {
    let examples: Vec<Example> = examples()
        .into_iter()
        .filter(|example| example.provider == provider)
        .collect();
    assert!(
        !examples.is_empty(),
        "no examples in specs/{provider}/examples"
    );
    let mut failures = Vec::new();
    for example in &examples {
        match decode(example, roundtrip) {
            Ok((original, encoded)) if equivalent(&original, &encoded) => {}
            Ok((original, encoded)) => failures.push(format!(
                "{}: re-encoded differently\n  documented: {original}\n  re-encoded: {encoded}",
                example.path.display()
            )),
            Err(err) => failures.push(format!("{}: {err}", example.path.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
