//! `cargo xtask diff [REV]`: what a spec change means for the callers of our code.
//!
//! Two normalized OpenAPI documents of one provider are compared operation by operation, and
//! every change is classified from *our* side of the wire:
//!
//! - in a **request** (we send it), a stricter rule breaks us (a lower `maxLength`, a new
//!   required property, an enum value gone, a new `pattern`...), a looser one is additive;
//! - in an **answer** (we decode it), an answer that can hold more than before breaks our
//!   decoding or mapping (a new enum value or status, a longer string, a property no longer
//!   required, a changed type), a narrower one has no effect;
//! - a text-only change (descriptions, summaries, examples) has no effect.
//!
//! Each change names the hand-written code that consumes it, so the developer knows where to
//! look. The same comparison serves OpenAPI and JSON Schema providers, since both are
//! normalized to one OpenAPI document.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use crate::spec::operations;

/// What a change means for callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Our requests may be refused, or answers may not decode or map.
    Breaking,
    /// Something new is possible; nothing we do today changes.
    Additive,
    /// Nothing observable changes for us.
    NoEffect,
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Class::Breaking => "breaking",
            Class::Additive => "additive",
            Class::NoEffect => "no effect",
        })
    }
}

/// One classified change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Breaking, additive or no effect.
    pub class: Class,
    /// Where: `POST /path (operationId) request .field`, `... 200 .field`, `... 409`.
    pub location: String,
    /// What changed, e.g. `maxLength 36 -> 64`.
    pub detail: String,
    /// The hand-written code that consumes the changed item.
    pub consumers: Vec<String>,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<9} {}: {}", self.class, self.location, self.detail)?;
        if !self.consumers.is_empty() {
            write!(f, "  [{}]", self.consumers.join(", "))?;
        }
        Ok(())
    }
}

/// Which side of the wire a schema is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// We send it: stricter breaks.
    Request,
    /// We decode it: wider breaks.
    Answer,
}

impl Side {
    /// The class of a change that makes the schema accept less (`narrower`) or more.
    fn class(self, narrower: bool) -> Class {
        match (self, narrower) {
            (Side::Request, true) | (Side::Answer, false) => Class::Breaking,
            (Side::Request, false) => Class::Additive,
            (Side::Answer, true) => Class::NoEffect,
        }
    }
}

/// Classifies every change from `old` to `new` for `provider` (used to name consumers).
pub fn classify(provider: &str, old: &Value, new: &Value) -> Vec<Change> {
    let mut out = Diff {
        provider,
        old,
        new,
        changes: Vec::new(),
    };
    out.operations();
    out.changes
        .sort_by(|a, b| (a.class, &a.location).cmp(&(b.class, &b.location)));
    out.changes
}

struct Diff<'a> {
    provider: &'a str,
    old: &'a Value,
    new: &'a Value,
    changes: Vec<Change>,
}

impl Diff<'_> {
    fn push(&mut self, class: Class, location: String, detail: String, side: Option<Side>) {
        let p = self.provider;
        let consumers = match side {
            Some(Side::Request) => vec![
                format!("facade/src/providers/{p}/transformers.rs refund_body"),
                "facade validation (generated constraints)".to_owned(),
                format!("sandbox/src/{p}.rs"),
            ],
            Some(Side::Answer) => vec![
                format!("facade/src/providers/{p}/transformers.rs refund_result"),
                format!("sandbox/src/{p}.rs answers"),
            ],
            None => Vec::new(),
        };
        self.changes.push(Change {
            class,
            location,
            detail,
            consumers,
        });
    }

    fn operations(&mut self) {
        let index = |doc: &'_ Value| -> Vec<(String, Value)> {
            operations(doc)
                .map(|(method, path, op)| (format!("{} {path}", method.to_uppercase()), op.clone()))
                .collect()
        };
        let (old_ops, new_ops) = (index(self.old), index(self.new));
        for (name, old_op) in &old_ops {
            let label = format!("{name} ({})", old_op["operationId"].as_str().unwrap_or("?"));
            match new_ops.iter().find(|(n, _)| n == name) {
                None => self.push(
                    Class::Breaking,
                    label,
                    "operation removed".to_owned(),
                    Some(Side::Request),
                ),
                Some((_, new_op)) => self.operation(&label, old_op, new_op),
            }
        }
        for (name, new_op) in &new_ops {
            if !old_ops.iter().any(|(n, _)| n == name) {
                let label = format!("{name} ({})", new_op["operationId"].as_str().unwrap_or("?"));
                self.push(Class::Additive, label, "operation added".to_owned(), None);
            }
        }
    }

    fn operation(&mut self, label: &str, old: &Value, new: &Value) {
        if old["operationId"] != new["operationId"] {
            self.push(
                Class::Breaking,
                label.to_owned(),
                format!(
                    "operationId {} -> {} (the generated method and constraints module are renamed)",
                    old["operationId"], new["operationId"]
                ),
                Some(Side::Request),
            );
        }
        if old["security"] != new["security"] {
            // `security: []` lifts the requirement (looser); anything else may demand
            // credentials we do not send.
            let lifted = new["security"].as_array().is_some_and(Vec::is_empty);
            self.push(
                if lifted {
                    Class::Additive
                } else {
                    Class::Breaking
                },
                label.to_owned(),
                format!("security {} -> {}", old["security"], new["security"]),
                Some(Side::Request),
            );
        }
        let body = |op: &Value| op["requestBody"]["content"]["application/json"]["schema"].clone();
        let (old_body, new_body) = (body(old), body(new));
        let location = format!("{label} request");
        self.schema(&location, &old_body, &new_body, Side::Request, 0);

        let statuses = |op: &Value| -> BTreeSet<String> {
            op["responses"]
                .as_object()
                .map(|r| r.keys().cloned().collect())
                .unwrap_or_default()
        };
        let (old_statuses, new_statuses) = (statuses(old), statuses(new));
        for status in new_statuses.difference(&old_statuses) {
            self.push(
                Class::Breaking,
                format!("{label} {status}"),
                "status added: the mapping judges it by status code alone until it is mapped"
                    .to_owned(),
                Some(Side::Answer),
            );
        }
        for status in old_statuses.difference(&new_statuses) {
            self.push(
                Class::NoEffect,
                format!("{label} {status}"),
                "status removed (still handled by the mapping if it comes)".to_owned(),
                Some(Side::Answer),
            );
        }
        for status in old_statuses.intersection(&new_statuses) {
            let schema = |op: &Value| {
                op["responses"][status.as_str()]["content"]["application/json"]["schema"].clone()
            };
            let location = format!("{label} {status}");
            self.schema(&location, &schema(old), &schema(new), Side::Answer, 0);
        }
    }

    /// Resolves `$ref`s (and one-element `allOf`) in the document the schema came from.
    fn resolve(doc: &Value, schema: &Value, depth: usize) -> Value {
        if depth > 32 {
            return schema.clone();
        }
        if let Some(pointer) = schema["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
            return doc
                .pointer(pointer)
                .map_or(Value::Null, |target| Self::resolve(doc, target, depth + 1));
        }
        if let Some([only]) = schema["allOf"].as_array().map(Vec::as_slice) {
            return Self::resolve(doc, only, depth + 1);
        }
        schema.clone()
    }

    fn schema(&mut self, at: &str, old: &Value, new: &Value, side: Side, depth: usize) {
        if depth > 16 {
            return;
        }
        // Not compared as a whole: equal text can still hold `$ref`s whose targets changed.
        let old = Self::resolve(self.old, old, 0);
        let new = Self::resolve(self.new, new, 0);
        match (old.is_null(), new.is_null()) {
            (true, true) => return,
            (true, false) => {
                let class = side.class(true);
                self.push(
                    class,
                    at.to_owned(),
                    "body schema added".to_owned(),
                    Some(side),
                );
                return;
            }
            (false, true) => {
                let class = side.class(false);
                self.push(
                    class,
                    at.to_owned(),
                    "body schema removed".to_owned(),
                    Some(side),
                );
                return;
            }
            _ => {}
        }
        self.keywords(at, &old, &new, side);
        self.properties(at, &old, &new, side, depth);
        if old.get("items").is_some() || new.get("items").is_some() {
            self.schema(
                &format!("{at}[]"),
                &old["items"],
                &new["items"],
                side,
                depth + 1,
            );
        }
    }

    fn keywords(&mut self, at: &str, old: &Value, new: &Value, side: Side) {
        let field = |v: &Value, key: &str| v.get(key).cloned();
        let number = |v: &Option<Value>| v.as_ref().and_then(Value::as_f64);
        // (keyword, does a larger value narrow the schema?)
        for (key, larger_narrows) in [
            ("maxLength", false),
            ("maxItems", false),
            ("maximum", false),
            ("minLength", true),
            ("minItems", true),
            ("minimum", true),
        ] {
            let (before, after) = (field(old, key), field(new, key));
            if before == after {
                continue;
            }
            let narrower = match (number(&before), number(&after)) {
                (Some(b), Some(a)) => (a > b) == larger_narrows,
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (None, None) => continue,
            };
            self.push(
                side.class(narrower),
                at.to_owned(),
                format!("{key} {} -> {}", show(&before), show(&after)),
                Some(side),
            );
        }
        for key in ["type", "format", "pattern", "multipleOf", "nullable"] {
            let (before, after) = (field(old, key), field(new, key));
            if before == after {
                continue;
            }
            let class = match key {
                // A nullable answer can hold more; a nullable request is looser.
                "nullable" => side.class(after != Some(Value::Bool(true))),
                // Adding or changing these is at least as strict for a request, and for an
                // answer a different type or format may not decode.
                _ if before.is_none() => side.class(true),
                _ if after.is_none() => side.class(false),
                _ => Class::Breaking,
            };
            self.push(
                class,
                at.to_owned(),
                format!("{key} {} -> {}", show(&before), show(&after)),
                Some(side),
            );
        }
        let values = |v: &Value| -> Option<BTreeSet<String>> {
            v.get("enum")?
                .as_array()
                .map(|vals| vals.iter().map(ToString::to_string).collect())
        };
        match (values(old), values(new)) {
            (Some(before), Some(after)) if before != after => {
                let added: Vec<&String> = after.difference(&before).collect();
                let removed: Vec<&String> = before.difference(&after).collect();
                if !removed.is_empty() {
                    self.push(
                        side.class(true),
                        at.to_owned(),
                        format!("enum values removed: {}", join(&removed)),
                        Some(side),
                    );
                }
                if !added.is_empty() {
                    self.push(
                        side.class(false),
                        at.to_owned(),
                        format!("enum values added: {}", join(&added)),
                        Some(side),
                    );
                }
            }
            (None, Some(_)) => {
                self.push(
                    side.class(true),
                    at.to_owned(),
                    "enum added".to_owned(),
                    Some(side),
                );
            }
            (Some(_), None) => {
                self.push(
                    side.class(false),
                    at.to_owned(),
                    "enum removed".to_owned(),
                    Some(side),
                );
            }
            _ => {}
        }
        for key in ["description", "summary", "title", "example"] {
            if old.get(key) != new.get(key) {
                self.push(
                    Class::NoEffect,
                    at.to_owned(),
                    format!("{key} changed"),
                    None,
                );
            }
        }
    }

    fn properties(&mut self, at: &str, old: &Value, new: &Value, side: Side, depth: usize) {
        let required = |v: &Value| -> BTreeSet<String> {
            v["required"]
                .as_array()
                .map(|names| {
                    names
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let names = |v: &Value| -> BTreeSet<String> {
            v["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default()
        };
        let (old_required, new_required) = (required(old), required(new));
        let (old_names, new_names) = (names(old), names(new));
        for name in new_names.difference(&old_names) {
            // A new required request property is stricter; a new answer property is a field
            // our decoding ignores until it is used.
            let class = match side {
                Side::Request if new_required.contains(name) => Class::Breaking,
                _ => Class::Additive,
            };
            self.push(
                class,
                format!("{at} .{name}"),
                format!(
                    "property added ({})",
                    if new_required.contains(name) {
                        "required"
                    } else {
                        "optional"
                    }
                ),
                Some(side),
            );
        }
        for name in old_names.difference(&new_names) {
            // We may send it (a stricter schema may refuse it) or read it (it no longer comes).
            self.push(
                Class::Breaking,
                format!("{at} .{name}"),
                "property removed".to_owned(),
                Some(side),
            );
        }
        for name in old_names.intersection(&new_names) {
            let location = format!("{at} .{name}");
            match (old_required.contains(name), new_required.contains(name)) {
                (false, true) => self.push(
                    side.class(true),
                    location.clone(),
                    "now required".to_owned(),
                    Some(side),
                ),
                (true, false) => self.push(
                    side.class(false),
                    location.clone(),
                    "no longer required".to_owned(),
                    Some(side),
                ),
                _ => {}
            }
            self.schema(
                &location,
                &old["properties"][name],
                &new["properties"][name],
                side,
                depth + 1,
            );
        }
    }
}

fn show(value: &Option<Value>) -> String {
    value
        .as_ref()
        .map_or_else(|| "none".to_owned(), ToString::to_string)
}

fn join(values: &[&String]) -> String {
    values
        .iter()
        .map(|v| v.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A provider's normalized spec as it was at git revision `rev` (its spec files read with
/// `git show`, normalized in a scratch folder exactly as the working tree's are).
pub fn normalized_at(
    root: &std::path::Path,
    provider: &crate::Provider,
    rev: &str,
) -> anyhow::Result<Value> {
    use anyhow::Context;
    let scratch = std::env::temp_dir().join(format!(
        "xtask-diff-{}-{}-{}",
        provider.name,
        std::process::id(),
        rev.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    ));
    std::fs::create_dir_all(&scratch)?;
    for input in provider.inputs() {
        let output = std::process::Command::new("git")
            .args(["show", &format!("{rev}:{input}")])
            .current_dir(root)
            .output()
            .context("running git")?;
        anyhow::ensure!(
            output.status.success(),
            "git show {rev}:{input}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        let name = std::path::Path::new(&input)
            .file_name()
            .context("an input file name")?;
        std::fs::write(scratch.join(name), output.stdout)?;
    }
    let normalized = crate::spec::normalize(provider, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(normalized?.openapi)
}
