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
//! normalized to one OpenAPI document. The providers are the working tree's
//! ([`crate::providers`]); one that the old revision does not have (no `specs/<provider>/`
//! there) is compared with an empty spec, so every operation and webhook is added, as are those
//! of a document added to an existing provider since.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use crate::spec::{operations, webhooks};

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

/// A string the facade maps into its own statuses by hand (a `match` on the text, anything
/// unknown read as pending): when a spec publishes its values, or adds one, each value needs a
/// deliberate mapping, so the change is breaking and names the function that maps it.
#[derive(Debug, Clone, Copy)]
pub struct MappedStatus {
    /// The provider.
    pub provider: &'static str,
    /// The component schema that holds the field.
    pub schema: &'static str,
    /// The field's wire name.
    pub property: &'static str,
    /// The hand-written file that maps it, relative to the workspace root.
    pub file: &'static str,
    /// The function in that file.
    pub function: &'static str,
    /// What the function does with a value it does not know.
    pub unknown: &'static str,
}

/// Every answer status the facade maps from a plain string. (A test checks that each function
/// still exists in its file, so a move in the facade shows up here.)
pub const MAPPED_STATUSES: &[MappedStatus] = &[
    MappedStatus {
        provider: "optty",
        schema: "RefundResponse",
        property: "refundStatus",
        file: "facade/src/providers/optty/transformers.rs",
        function: "refund_success",
        unknown: "any other value is read as Pending",
    },
    MappedStatus {
        provider: "moyasar",
        schema: "Transaction",
        property: "status",
        file: "facade/src/providers/moyasar/transformers.rs",
        function: "transaction_status",
        unknown: "any other value is read as Pending",
    },
    MappedStatus {
        provider: "openapp",
        schema: "RefundAcknowledgement",
        property: "status",
        file: "facade/src/providers/openapp/transformers.rs",
        function: "refund_success",
        unknown: "the status is not read: every acknowledgement is Pending",
    },
];

impl MappedStatus {
    fn consumer(&self) -> String {
        format!(
            "{} {} maps `{}` ({})",
            self.file, self.function, self.property, self.unknown
        )
    }
}

/// Classifies every change from `old` to `new` for `provider` (used to name consumers).
pub fn classify(provider: &str, old: &Value, new: &Value) -> Vec<Change> {
    let mut out = Diff {
        provider,
        old,
        new,
        operation: String::new(),
        webhook: false,
        changes: Vec::new(),
    };
    out.operations();
    out.webhooks();
    out.changes
        .sort_by(|a, b| (a.class, &a.location).cmp(&(b.class, &b.location)));
    out.changes
}

struct Diff<'a> {
    provider: &'a str,
    old: &'a Value,
    new: &'a Value,
    /// The operationId being compared (names the transformer functions).
    operation: String,
    /// Whether it is a webhook (a request the provider sends to us: its body is decoded).
    webhook: bool,
    changes: Vec<Change>,
}

/// What an operation is to the facade, which names the code that consumes its changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The refund call (`refund_body`, `refund_result`).
    Refund,
    /// Optty's token call (`token_body`, `token_result`).
    Token,
    /// A read of an order or its refunds (the facade's read-back).
    Read,
    /// A notification the provider sends to us.
    Webhook,
}

/// A schema after `$ref`s are followed.
enum Node {
    /// No schema at all.
    Absent,
    /// A `$ref` whose target is not in the document.
    Dangling(String),
    /// The schema, with the name of the last component schema a `$ref` led to.
    Schema(Value, Option<String>),
}

/// Where a schema sits: the property of which component schema, if it is one.
#[derive(Clone, Default)]
struct Field {
    /// The component schema that holds the property.
    parent: Option<String>,
    /// The property's wire name.
    property: Option<String>,
}

impl Diff<'_> {
    /// The role of the operation being compared, from its operationId.
    fn role(&self) -> Role {
        let id = self.operation.to_ascii_lowercase();
        if self.webhook {
            Role::Webhook
        } else if id.contains("token") {
            Role::Token
        } else if id.contains("refundorder") {
            Role::Refund
        } else {
            Role::Read
        }
    }

    fn consumers(&self, side: Option<Side>) -> Vec<String> {
        let p = self.provider;
        let transformers = format!("facade/src/providers/{p}/transformers.rs");
        match (self.role(), side) {
            (_, None) => Vec::new(),
            (Role::Webhook, Some(_)) => vec![
                format!("facade/src/providers/{p}/ notification handling (a hint to read)"),
                format!("sandbox/src/{p}.rs notifications"),
            ],
            (Role::Read, Some(Side::Request)) => vec![
                format!("facade/src/providers/{p}/ read request"),
                format!("sandbox/src/{p}.rs reads"),
            ],
            (Role::Read, Some(Side::Answer)) => vec![
                format!("facade/src/providers/{p}/ read mapping"),
                format!("sandbox/src/{p}.rs read answers"),
            ],
            (role, Some(side)) => {
                // The token endpoint has its own pair of functions.
                let (body, result) = if role == Role::Token {
                    ("token_body", "token_result")
                } else {
                    ("refund_body", "refund_result")
                };
                match side {
                    Side::Request => vec![
                        format!("{transformers} {body}"),
                        "facade validation (generated constraints)".to_owned(),
                        format!("sandbox/src/{p}.rs"),
                    ],
                    Side::Answer => vec![
                        format!("{transformers} {result}"),
                        format!("sandbox/src/{p}.rs answers"),
                    ],
                }
            }
        }
    }

    fn push(&mut self, class: Class, location: String, detail: String, side: Option<Side>) {
        let consumers = self.consumers(side);
        self.changes.push(Change {
            class,
            location,
            detail,
            consumers,
        });
    }

    /// As [`Self::push`], naming the generated constant that states `key` at `at` (a request
    /// constraint) among the consumers: code that reads it follows the change by itself, and a
    /// test or payload that restates its value does not.
    fn push_with_constant(
        &mut self,
        class: Class,
        at: &str,
        detail: String,
        side: Side,
        key: &str,
    ) {
        let mut consumers = self.consumers(Some(side));
        if let Some(constant) = self.constant(at, key, side) {
            consumers.push(constant);
        }
        self.changes.push(Change {
            class,
            location: at.to_owned(),
            detail,
            consumers,
        });
    }

    /// The generated constant (`<provider>_api::constraints::<operation>::<field>::<NAME>`, see
    /// `crate::constraints`) that states `key` for the request body location `at`.
    fn constant(&self, at: &str, key: &str, side: Side) -> Option<String> {
        if side != Side::Request {
            return None;
        }
        let name = match key {
            "minLength" => "MIN_LENGTH",
            "maxLength" => "MAX_LENGTH",
            "minItems" => "MIN_ITEMS",
            "maxItems" => "MAX_ITEMS",
            "minimum" => "MINIMUM",
            "maximum" => "MAXIMUM",
            "exclusiveMinimum" => "EXCLUSIVE_MINIMUM",
            "exclusiveMaximum" => "EXCLUSIVE_MAXIMUM",
            "multipleOf" => "MULTIPLE_OF",
            "nullable" => "NULLABLE",
            "pattern" => "PATTERN",
            "format" => "FORMAT",
            "enum" => "ENUM",
            "required" => "REQUIRED",
            _ => return None,
        };
        let (_, fields) = at.split_once(" request")?;
        let mut path = vec![crate::constraints::ident(&self.operation).to_string()];
        for field in fields.split(" .").filter(|f| !f.trim().is_empty()) {
            let bare = field.trim_end_matches("[]");
            if !bare.is_empty() {
                path.push(crate::constraints::ident(bare).to_string());
            }
            for _ in 0..(field.len() - bare.len()) / 2 {
                path.push("items".to_owned());
            }
        }
        Some(format!(
            "{}_api::constraints::{}::{name}",
            self.provider,
            path.join("::")
        ))
    }

    fn operations(&mut self) {
        let index = |doc: &'_ Value| -> Vec<(String, Value)> {
            operations(doc)
                .map(|(method, path, op)| (format!("{} {path}", method.to_uppercase()), op.clone()))
                .collect()
        };
        let (old_ops, new_ops) = (index(self.old), index(self.new));
        for (name, old_op) in &old_ops {
            self.operation = old_op["operationId"].as_str().unwrap_or("?").to_owned();
            let label = format!("{name} ({})", self.operation);
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

    /// The webhooks ([`crate::spec::WEBHOOKS`]): their bodies are what the provider sends us, so
    /// they are compared as answers (a wider body breaks our decoding).
    fn webhooks(&mut self) {
        let index = |doc: &'_ Value| -> Vec<(String, Value)> {
            webhooks(doc)
                .map(|(method, name, op)| {
                    (
                        format!("webhook {} {name}", method.to_uppercase()),
                        op.clone(),
                    )
                })
                .collect()
        };
        let (old_hooks, new_hooks) = (index(self.old), index(self.new));
        self.webhook = true;
        for (name, old_hook) in &old_hooks {
            self.operation = old_hook["operationId"].as_str().unwrap_or("?").to_owned();
            let label = format!("{name} ({})", self.operation);
            match new_hooks.iter().find(|(n, _)| n == name) {
                None => self.push(
                    Class::NoEffect,
                    label,
                    "webhook removed (a notification is a hint to read; the reads still settle)"
                        .to_owned(),
                    Some(Side::Answer),
                ),
                Some((_, new_hook)) => {
                    let body = |op: &Value| {
                        op["requestBody"]["content"]["application/json"]["schema"].clone()
                    };
                    let location = format!("{label} body");
                    let top = Field::default();
                    self.schema(
                        &location,
                        &body(old_hook),
                        &body(new_hook),
                        Side::Answer,
                        &top,
                        0,
                    );
                }
            }
        }
        for (name, new_hook) in &new_hooks {
            if !old_hooks.iter().any(|(n, _)| n == name) {
                let label = format!(
                    "{name} ({})",
                    new_hook["operationId"].as_str().unwrap_or("?")
                );
                self.push(Class::Additive, label, "webhook added".to_owned(), None);
            }
        }
        self.webhook = false;
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
        let top = Field::default();
        self.schema(&location, &old_body, &new_body, Side::Request, &top, 0);

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
            self.schema(&location, &schema(old), &schema(new), Side::Answer, &top, 0);
        }
    }

    /// Follows `$ref`s (and one-element `allOf`) in the document the schema came from.
    fn resolve(doc: &Value, schema: &Value, name: Option<String>, depth: usize) -> Node {
        if schema.is_null() {
            return Node::Absent;
        }
        if depth > 32 {
            return Node::Schema(schema.clone(), name);
        }
        if let Some(reference) = schema["$ref"].as_str() {
            let target = reference.strip_prefix('#').and_then(|p| doc.pointer(p));
            return match target {
                Some(target) => {
                    let name = reference
                        .strip_prefix("#/components/schemas/")
                        .map(str::to_owned);
                    Self::resolve(doc, target, name, depth + 1)
                }
                None => Node::Dangling(reference.to_owned()),
            };
        }
        if let Some([only]) = schema["allOf"].as_array().map(Vec::as_slice) {
            return Self::resolve(doc, only, name, depth + 1);
        }
        Node::Schema(schema.clone(), name)
    }

    fn schema(
        &mut self,
        at: &str,
        old: &Value,
        new: &Value,
        side: Side,
        field: &Field,
        depth: usize,
    ) {
        if depth > 16 {
            return;
        }
        // Not compared as a whole: equal text can still hold `$ref`s whose targets changed.
        let what = if depth == 0 { "body schema" } else { "schema" };
        if let (Some(before), Some(after)) = (old["$ref"].as_str(), new["$ref"].as_str())
            && before != after
        {
            // The same wire shape may follow, but the generated type has another name.
            self.push(
                Class::Breaking,
                at.to_owned(),
                format!("$ref {before} -> {after} (the generated type is renamed)"),
                Some(side),
            );
        }
        let (old, old_name, new, new_name) = match (
            Self::resolve(self.old, old, None, 0),
            Self::resolve(self.new, new, None, 0),
        ) {
            (Node::Absent, Node::Absent) => return,
            (Node::Dangling(before), Node::Dangling(after)) if before == after => return,
            (_, Node::Dangling(reference)) => {
                let detail = format!(
                    "dangling $ref {reference}: the document has no schema there (renamed or \
                     removed by the vendor, or an overlay or authored document still naming the \
                     old one); `cargo xtask generate` fails until the reference is fixed"
                );
                self.push(Class::Breaking, at.to_owned(), detail, Some(side));
                return;
            }
            (Node::Dangling(reference), _) => {
                let detail = format!("the dangling $ref {reference} is gone");
                self.push(Class::NoEffect, at.to_owned(), detail, Some(side));
                return;
            }
            (Node::Absent, Node::Schema(..)) => {
                self.push(
                    side.class(true),
                    at.to_owned(),
                    format!("{what} added"),
                    Some(side),
                );
                return;
            }
            (Node::Schema(..), Node::Absent) => {
                self.push(
                    side.class(false),
                    at.to_owned(),
                    format!("{what} removed"),
                    Some(side),
                );
                return;
            }
            (Node::Schema(old, old_name), Node::Schema(new, new_name)) => {
                (old, old_name, new, new_name)
            }
        };
        self.keywords(at, &old, &new, side, field);
        let parent = new_name.or(old_name);
        self.properties(at, &old, &new, side, parent.as_deref(), depth);
        if old.get("items").is_some() || new.get("items").is_some() {
            self.schema(
                &format!("{at}[]"),
                &old["items"],
                &new["items"],
                side,
                field,
                depth + 1,
            );
        }
        fn open(v: &Value) -> Option<Value> {
            v.get("additionalProperties")
                .filter(|a| a.is_object())
                .cloned()
        }
        if let (Some(before), Some(after)) = (open(&old), open(&new)) {
            self.schema(
                &format!("{at}{{*}}"),
                &before,
                &after,
                side,
                &Field::default(),
                depth + 1,
            );
        }
    }

    /// The hand-written mapping of this field, if the facade maps it from a plain string.
    fn mapped_status(&self, field: &Field) -> Option<&'static MappedStatus> {
        MAPPED_STATUSES.iter().find(|m| {
            m.provider == self.provider
                && field.parent.as_deref() == Some(m.schema)
                && field.property.as_deref() == Some(m.property)
        })
    }

    fn keywords(&mut self, at: &str, old: &Value, new: &Value, side: Side, field: &Field) {
        let compared = ["type", "format"]
            .into_iter()
            .chain(crate::surface::KEYWORDS.iter().copied());
        for key in compared {
            let (before, after) = (old.get(key), new.get(key));
            if before == after {
                continue;
            }
            if key == "enum" {
                self.enumeration(at, old, new, side, field);
                continue;
            }
            let shown = format!("{key} {} -> {}", show(before), show(after));
            let Some((class, note)) = keyword_class(key, before, after, side) else {
                continue;
            };
            // `format: double` on a number only states what no format means: an f64.
            let float = |v: Option<&Value>| v.is_none_or(|f| f == "double");
            let (class, note) = if key == "format"
                && crate::money::generated_as_f64(new)
                && float(before)
                && float(after)
            {
                (Class::NoEffect, Some("an f64 either way"))
            } else {
                (class, note)
            };
            let mut detail = match note {
                Some(note) => format!("{shown} ({note})"),
                None => shown,
            };
            if matches!(key, "type" | "format")
                && crate::money::generated_as_f64(new)
                && !crate::money::generated_as_f64(old)
            {
                detail.push_str(&format!(
                    " (now generated as f64: if it is money, add `format: decimal` in \
                     specs/{}/overlay.json, never an f64 in the facade)",
                    self.provider
                ));
            }
            self.push_with_constant(class, at, detail, side, key);
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

    fn enumeration(&mut self, at: &str, old: &Value, new: &Value, side: Side, field: &Field) {
        let values = |v: &Value| -> Option<BTreeSet<String>> {
            v.get("enum")?
                .as_array()
                .map(|vals| vals.iter().map(ToString::to_string).collect())
        };
        let mapped = (side == Side::Answer)
            .then(|| self.mapped_status(field))
            .flatten();
        let mut changes: Vec<(Class, String)> = Vec::new();
        match (values(old), values(new)) {
            (Some(before), Some(after)) => {
                let added: Vec<&String> = after.difference(&before).collect();
                let removed: Vec<&String> = before.difference(&after).collect();
                if !removed.is_empty() {
                    changes.push((
                        side.class(true),
                        format!("enum values removed: {}", join(&removed)),
                    ));
                }
                if !added.is_empty() {
                    let mut detail = format!("enum values added: {}", join(&added));
                    if side == Side::Answer && mapped.is_none() {
                        detail.push_str(
                            " (the generated enum refuses them until regenerated, and the \
                             transformer that matches on it must map them)",
                        );
                    }
                    changes.push((side.class(false), detail));
                }
            }
            (None, Some(after)) => {
                let listed: Vec<&String> = after.iter().collect();
                // A status we map from a plain string: the published values are ours to map
                // (and the generated type turns from a String into an enum).
                let class = if mapped.is_some() {
                    Class::Breaking
                } else {
                    side.class(true)
                };
                let listed = if listed.is_empty() {
                    "(no values)".to_owned()
                } else {
                    join(&listed)
                };
                changes.push((class, format!("enum added: {listed}")));
            }
            (Some(_), None) => changes.push((side.class(false), "enum removed".to_owned())),
            (None, None) => {}
        }
        for (class, mut detail) in changes {
            if let Some(mapped) = mapped {
                detail.push_str(&format!(
                    " (a status the facade maps from a string: map every published value \
                     deliberately in {} {})",
                    mapped.file, mapped.function
                ));
            }
            let mut consumers = self.consumers(Some(side));
            if let Some(mapped) = mapped {
                consumers.insert(0, mapped.consumer());
            }
            if let Some(constant) = self.constant(at, "enum", side) {
                consumers.push(constant);
            }
            self.changes.push(Change {
                class,
                location: at.to_owned(),
                detail,
                consumers,
            });
        }
    }

    fn properties(
        &mut self,
        at: &str,
        old: &Value,
        new: &Value,
        side: Side,
        parent: Option<&str>,
        depth: usize,
    ) {
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
                (false, true) => self.push_with_constant(
                    side.class(true),
                    &location,
                    "now required".to_owned(),
                    side,
                    "required",
                ),
                (true, false) => self.push_with_constant(
                    side.class(false),
                    &location,
                    "no longer required".to_owned(),
                    side,
                    "required",
                ),
                _ => {}
            }
            let field = Field {
                parent: parent.map(str::to_owned),
                property: Some(name.clone()),
            };
            self.schema(
                &location,
                &old["properties"][name],
                &new["properties"][name],
                side,
                &field,
                depth + 1,
            );
        }
    }
}

/// The class of a changed keyword (other than `enum`), with a note on why when it is not
/// obvious. `None` for a change that is no change (`false` for an absent flag).
fn keyword_class(
    key: &str,
    before: Option<&Value>,
    after: Option<&Value>,
    side: Side,
) -> Option<(Class, Option<&'static str>)> {
    let number = |v: Option<&Value>| v.and_then(Value::as_f64);
    let flag = |v: Option<&Value>| v.and_then(Value::as_bool).unwrap_or(false);
    // A bound: does a larger value narrow the schema?
    let bound = |larger_narrows: bool| -> Option<bool> {
        match (number(before), number(after)) {
            (Some(b), Some(a)) => Some((a > b) == larger_narrows),
            (None, Some(_)) => Some(true),
            (Some(_), None) => Some(false),
            (None, None) => None,
        }
    };
    // Adding or changing these is at least as strict for a request, and for an answer a
    // different value may not decode.
    let rule = || -> Class {
        match (before, after) {
            (None, _) => side.class(true),
            (_, None) => side.class(false),
            _ => Class::Breaking,
        }
    };
    let narrower = match key {
        "maxLength" | "maxItems" | "maximum" | "maxProperties" => bound(false)?,
        "minLength" | "minItems" | "minimum" | "minProperties" => bound(true)?,
        "exclusiveMinimum" | "exclusiveMaximum" => match (before, after) {
            // OpenAPI 3.0: a flag on `minimum`/`maximum`; JSON Schema: the bound itself.
            (Some(Value::Bool(_)), _) | (_, Some(Value::Bool(_))) => {
                if flag(before) == flag(after) {
                    return None;
                }
                flag(after)
            }
            _ => bound(key == "exclusiveMinimum")?,
        },
        "uniqueItems" => {
            if flag(before) == flag(after) {
                return None;
            }
            flag(after)
        }
        "nullable" => {
            if flag(before) == flag(after) {
                return None;
            }
            // A nullable answer can hold more; a nullable request is looser.
            !flag(after)
        }
        "type" | "format" | "pattern" | "multipleOf" | "const" => return Some((rule(), None)),
        "default" => {
            return Some(if before.is_none() {
                (Class::Additive, None)
            } else {
                (
                    Class::Breaking,
                    Some(
                        "an omitted field now means something else: the server's reading of \
                         what we leave out, or the generated decoder's value for what it leaves out",
                    ),
                )
            });
        }
        "additionalProperties" => {
            let closed = |v: Option<&Value>| v == Some(&Value::Bool(false));
            if closed(before) == closed(after) {
                // Both open: a changed schema of the extra properties is compared as `{*}`.
                return None;
            }
            return Some(match side {
                Side::Request => (side.class(closed(after)), None),
                Side::Answer if closed(after) => (
                    Class::Breaking,
                    Some("the generated type then refuses any field it does not know"),
                ),
                Side::Answer => (Class::Breaking, None),
            });
        }
        "readOnly" => {
            if flag(before) == flag(after) {
                return None;
            }
            return Some(match side {
                Side::Request if flag(after) => {
                    (Class::Breaking, Some("we send it, and must no longer"))
                }
                Side::Request => (Class::Additive, None),
                Side::Answer => (Class::NoEffect, None),
            });
        }
        "writeOnly" => {
            if flag(before) == flag(after) {
                return None;
            }
            return Some(match side {
                Side::Answer if flag(after) => {
                    (Class::Breaking, Some("the answer no longer carries it"))
                }
                Side::Answer => (Class::Additive, None),
                Side::Request => (Class::NoEffect, None),
            });
        }
        // A keyword the surface shows that has no rule here yet: never silently "no effect".
        _ => {
            return Some((
                Class::Breaking,
                Some("no rule classifies this keyword yet: review it"),
            ));
        }
    };
    Some((side.class(narrower), None))
}

fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "none".to_owned(), ToString::to_string)
}

fn join(values: &[&String]) -> String {
    values
        .iter()
        .map(|v| v.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A provider's normalized spec and the overlay actions that no longer apply to it (skipped,
/// each with its error), or why it could not be normalized at all.
pub type Lenient = anyhow::Result<(Value, Vec<String>)>;

/// A provider's normalized spec as it was at git revision `rev` (its spec files read with
/// `git show`, normalized in a scratch folder exactly as the working tree's are), overlay
/// actions that no longer apply skipped and returned.
pub fn normalized_at(root: &std::path::Path, provider: &crate::Provider, rev: &str) -> Lenient {
    let scratch = std::env::temp_dir().join(format!(
        "xtask-diff-{}-{}-{}",
        provider.name,
        std::process::id(),
        rev.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    ));
    let normalized = normalized_at_in(root, provider, rev, &scratch);
    // Whatever failed: a revision git does not know must not leave a folder behind.
    let _ = std::fs::remove_dir_all(&scratch);
    normalized
}

/// [`normalized_at`], its spec files written into `scratch`.
fn normalized_at_in(
    root: &std::path::Path,
    provider: &crate::Provider,
    rev: &str,
    scratch: &std::path::Path,
) -> Lenient {
    use anyhow::Context;
    std::fs::create_dir_all(scratch)?;
    // An authored addition (an OpenAPI document after the first) that `rev` does not have yet
    // was added since: it is read as an empty addition there, so that its operations show up
    // as added instead of failing the comparison.
    let additions: Vec<String> = match provider.kind {
        crate::SpecKind::OpenApi { documents } => documents
            .iter()
            .skip(1)
            .map(|file| format!("specs/{}/{file}", provider.name))
            .collect(),
        crate::SpecKind::JsonSchema { .. } => Vec::new(),
    };
    for input in provider.inputs() {
        let name = std::path::Path::new(&input)
            .file_name()
            .context("an input file name")?
            .to_owned();
        let exists = std::process::Command::new("git")
            .args(["cat-file", "-e", &format!("{rev}:{input}")])
            .current_dir(root)
            .output()
            .context("running git")?
            .status
            .success();
        if !exists && additions.contains(&input) {
            std::fs::write(scratch.join(&name), "{}")?;
            continue;
        }
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
        std::fs::write(scratch.join(&name), output.stdout)?;
    }
    normalized_in(provider, scratch)
}

/// Whether `rev` is a revision of the repository at `root` that has no `specs/<provider>/`
/// folder (the provider was added since). An unknown revision is not: reading its specs fails
/// with git's own message, as for every other provider.
pub fn is_new_at(root: &std::path::Path, provider: &crate::Provider, rev: &str) -> bool {
    let git_has = |object: &str| {
        std::process::Command::new("git")
            .args(["cat-file", "-e", object])
            .current_dir(root)
            .output()
            .is_ok_and(|output| output.status.success())
    };
    git_has(&format!("{rev}^{{tree}}")) && !git_has(&format!("{rev}:specs/{}", provider.name))
}

/// The spec of a provider that does not exist yet: no operation, webhook or schema.
pub fn empty_spec() -> Value {
    serde_json::json!({"openapi": "3.0.3", "paths": {}, "components": {"schemas": {}}})
}

/// A provider's normalized spec from the spec files in `dir`, overlay actions that no longer
/// apply skipped and returned.
pub fn normalized_in(provider: &crate::Provider, dir: &std::path::Path) -> Lenient {
    let (normalized, stale) = crate::spec::normalize_leniently(provider, dir)?;
    Ok((
        normalized.openapi,
        stale.iter().map(|e| format!("{e:#}")).collect(),
    ))
}

/// What `cargo xtask diff` found for one provider.
#[derive(Debug)]
pub struct ProviderDiff {
    /// The provider.
    pub provider: &'static str,
    /// Every classified change (empty when a side could not be normalized at all).
    pub changes: Vec<Change>,
    /// What stops the working tree's spec from being generated (overlay actions that no longer
    /// apply, numbers that would become f64, a spec that cannot be read), each a sentence.
    pub errors: Vec<String>,
    /// Remarks that do not fail the command (the old revision's own stale overlay actions).
    pub notes: Vec<String>,
}

/// Compares one provider's spec at the old revision with the working tree's. Either side may
/// have failed; whatever can still be compared is.
pub fn provider_diff(
    provider: &crate::Provider,
    rev: &str,
    old: Lenient,
    new: Lenient,
) -> ProviderDiff {
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let new = match new {
        Ok((spec, stale)) => {
            errors.extend(stale.into_iter().map(|e| {
                format!(
                    "specs/{}/overlay.json: {e} (skipped here, so the changes below are the \
                     vendor's without it; `cargo xtask generate` refuses the spec until the \
                     action is retargeted or removed)",
                    provider.name
                )
            }));
            errors.extend(
                crate::money::check(provider, &spec)
                    .iter()
                    .map(ToString::to_string),
            );
            Some(spec)
        }
        Err(e) => {
            errors.push(format!(
                "the working tree's spec cannot be normalized: {e:#}"
            ));
            None
        }
    };
    let old = match old {
        Ok((spec, stale)) => {
            notes.extend(
                stale
                    .into_iter()
                    .map(|e| format!("at {rev}, skipped as it did not apply there either: {e}")),
            );
            Some(spec)
        }
        Err(e) => {
            errors.push(format!("the spec at {rev} cannot be normalized: {e:#}"));
            None
        }
    };
    let changes = match (old, new) {
        (Some(old), Some(new)) => classify(provider.name, &old, &new),
        _ => Vec::new(),
    };
    ProviderDiff {
        provider: provider.name,
        changes,
        errors,
        notes,
    }
}

/// The whole report of `cargo xtask diff [REV]`: every provider, whatever failed for another.
#[derive(Debug)]
pub struct Report {
    /// The revision compared with the working tree.
    pub rev: String,
    /// One entry per provider, in [`crate::providers`] order.
    pub providers: Vec<ProviderDiff>,
}

impl Report {
    /// Compares every provider's working-tree spec under `root` with its spec at `rev`. A
    /// provider whose folder `rev` does not have is new: compared with an empty spec, every
    /// operation and webhook is added. Fails only when the providers cannot be found.
    pub fn build(root: &std::path::Path, rev: &str) -> anyhow::Result<Report> {
        let providers = crate::providers(root)?
            .iter()
            .map(|provider| Self::provider(root, provider, rev))
            .collect();
        Ok(Report {
            rev: rev.to_owned(),
            providers,
        })
    }

    /// One provider's entry of [`Self::build`].
    fn provider(root: &std::path::Path, provider: &crate::Provider, rev: &str) -> ProviderDiff {
        let new = normalized_in(provider, &provider.spec_dir(root));
        if !is_new_at(root, provider, rev) {
            return provider_diff(provider, rev, normalized_at(root, provider, rev), new);
        }
        let mut diff = provider_diff(provider, rev, Ok((empty_spec(), Vec::new())), new);
        let note = format!(
            "specs/{}/ is not in {rev}: a new provider, compared with an empty spec",
            provider.name
        );
        diff.notes.insert(0, note);
        diff
    }

    /// How many changes are breaking.
    pub fn breaking(&self) -> usize {
        self.providers
            .iter()
            .flat_map(|p| &p.changes)
            .filter(|c| c.class == Class::Breaking)
            .count()
    }

    /// How many errors stop a spec from being generated.
    pub fn errors(&self) -> usize {
        self.providers.iter().map(|p| p.errors.len()).sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for provider in &self.providers {
            write!(
                f,
                "{} ({} -> working tree): {} change(s)",
                provider.provider,
                self.rev,
                provider.changes.len()
            )?;
            if !provider.errors.is_empty() {
                write!(f, ", {} error(s)", provider.errors.len())?;
            }
            writeln!(f)?;
            for error in &provider.errors {
                writeln!(f, "  error: {error}")?;
            }
            for note in &provider.notes {
                writeln!(f, "  note: {note}")?;
            }
            for change in &provider.changes {
                writeln!(f, "  {change}")?;
            }
        }
        Ok(())
    }
}
