//! From the files in `specs/<provider>/` to one normalized OpenAPI 3.0 document.

use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Map, Value};

use crate::overlay::Overlay;
use crate::{OVERLAY, Provider, SpecKind};

/// The HTTP methods an OpenAPI path item can hold, in the order operations are listed.
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Where a document declares the requests a provider sends *to us* (notifications): OpenAPI 3.0
/// has no `webhooks` object (3.1 has), so authored documents use `x-webhooks`, the convention
/// tools used before 3.1, with the same shape: a name, then a path item of operations whose
/// request body is what the provider sends. progenitor ignores it (no client method is
/// generated); the xtask merges it, its component schemas are generated like the others, and
/// the surface, the change report and the example round trip read it.
pub const WEBHOOKS: &str = "x-webhooks";

/// Every operation of an OpenAPI document as (method, path, operation object), paths in
/// document order.
pub fn operations(openapi: &Value) -> impl Iterator<Item = (&'static str, &String, &Value)> {
    operations_under(openapi, "paths")
}

/// Every webhook of an OpenAPI document (under [`WEBHOOKS`]) as (method, webhook name,
/// operation object), in document order.
pub fn webhooks(openapi: &Value) -> impl Iterator<Item = (&'static str, &String, &Value)> {
    operations_under(openapi, WEBHOOKS)
}

fn operations_under<'a>(
    openapi: &'a Value,
    key: &str,
) -> impl Iterator<Item = (&'static str, &'a String, &'a Value)> + use<'a> {
    openapi[key]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter_map(move |method| item.get(*method).map(|op| (*method, path, op)))
        })
}

/// A provider's contract after our corrections.
pub struct Normalized {
    /// One OpenAPI 3.0 document: operations and every named schema.
    pub openapi: Value,
    /// For JSON Schema providers, the corrected root schema with every other named schema
    /// added to its `definitions`: typify's input.
    pub json_schema: Option<Value>,
}

fn read_json(dir: &Path, file: &str) -> Result<Value> {
    let path = dir.join(file);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Loads, merges and corrects a provider's documents.
pub fn normalize(provider: &Provider, dir: &Path) -> Result<Normalized> {
    // Strict: the first action that does not apply is the error.
    normalize_with(provider, dir, false).map(|(normalized, _)| normalized)
}

/// As [`normalize`], but an overlay action that no longer applies is skipped and returned
/// instead of failing the whole provider (for `cargo xtask diff`, which still reports the
/// vendor's changes). Anything else that fails (a missing file, bad JSON) is still an error.
pub fn normalize_leniently(
    provider: &Provider,
    dir: &Path,
) -> Result<(Normalized, Vec<anyhow::Error>)> {
    normalize_with(provider, dir, true)
}

fn normalize_with(
    provider: &Provider,
    dir: &Path,
    lenient: bool,
) -> Result<(Normalized, Vec<anyhow::Error>)> {
    let apply = |overlay: &Overlay, document: &mut Value| -> Result<Vec<anyhow::Error>> {
        if lenient {
            Ok(overlay.apply_leniently(document))
        } else {
            overlay.apply(document).map(|()| Vec::new())
        }
    };
    let overlay_path = dir.join(OVERLAY);
    let overlay_text = std::fs::read_to_string(&overlay_path)
        .with_context(|| format!("reading {}", overlay_path.display()))?;
    let overlay = Overlay::parse(&overlay_text)
        .with_context(|| format!("parsing {}", overlay_path.display()))?;

    match provider.kind {
        SpecKind::OpenApi { documents } => {
            let (first, rest) = documents.split_first().expect("at least one document");
            let mut openapi = read_json(dir, first)?;
            for file in rest {
                merge_document(&mut openapi, read_json(dir, file)?)
                    .with_context(|| format!("merging {file} into {first}"))?;
            }
            let stale = apply(&overlay, &mut openapi)?;
            check_openapi_version(&openapi)?;
            Ok((
                Normalized {
                    openapi,
                    json_schema: None,
                },
                stale,
            ))
        }
        SpecKind::JsonSchema { schema, endpoint } => {
            let mut root = read_json(dir, schema)?;
            let stale = apply(&overlay, &mut root)?;
            let mut openapi = read_json(dir, endpoint)?;
            check_openapi_version(&openapi)?;
            let json_schema = embed_schema(&mut openapi, &root)?;
            Ok((
                Normalized {
                    openapi,
                    json_schema: Some(json_schema),
                },
                stale,
            ))
        }
    }
}

/// progenitor 0.15.1 reads OpenAPI 3.0.x only.
fn check_openapi_version(openapi: &Value) -> Result<()> {
    let version = openapi["openapi"].as_str().unwrap_or_default();
    ensure!(
        version.starts_with("3.0."),
        "OpenAPI {version:?} is not 3.0.x, which is all progenitor reads"
    );
    Ok(())
}

/// Merges the paths, webhooks ([`WEBHOOKS`]) and component schemas of an authored addition into
/// the vendor document. A path, webhook or schema defined twice is an error, never a silent
/// override. The addition's `servers` move onto its path items, since they usually differ
/// (Optty's token endpoint lives on another host).
fn merge_document(target: &mut Value, addition: Value) -> Result<()> {
    let servers = addition.get("servers").cloned();
    for (path, mut item) in object(&addition, "paths")? {
        if let (Some(servers), Some(item)) = (&servers, item.as_object_mut()) {
            item.entry("servers").or_insert_with(|| servers.clone());
        }
        insert_new(target, &["paths"], path, item)?;
    }
    for (name, item) in object(&addition, WEBHOOKS)? {
        insert_new(target, &[WEBHOOKS], name, item)?;
    }
    if let Some(schemas) = addition.pointer("/components/schemas") {
        for (name, schema) in schemas.as_object().into_iter().flatten() {
            insert_new(
                target,
                &["components", "schemas"],
                name.clone(),
                schema.clone(),
            )?;
        }
    }
    Ok(())
}

fn object(value: &Value, key: &str) -> Result<Map<String, Value>> {
    match value.get(key) {
        Some(Value::Object(map)) => Ok(map.clone()),
        None => Ok(Map::new()),
        Some(_) => bail!("`{key}` is not an object"),
    }
}

fn insert_new(target: &mut Value, at: &[&str], key: String, value: Value) -> Result<()> {
    let mut node = target;
    for step in at {
        node = node
            .as_object_mut()
            .context("document is not an object")?
            .entry(*step)
            .or_insert_with(|| Value::Object(Map::new()));
    }
    let map = node.as_object_mut().context("not an object")?;
    ensure!(
        !map.contains_key(&key),
        "{} `{key}` is defined twice",
        at.join(".")
    );
    map.insert(key, value);
    Ok(())
}

/// Puts a JSON Schema document's root (under its title) and its `definitions` into the
/// OpenAPI document's component schemas, and returns typify's input: the root with the
/// endpoint's own schemas added to its definitions.
fn embed_schema(openapi: &mut Value, root: &Value) -> Result<Value> {
    let title = root["title"]
        .as_str()
        .context("the root schema has no title (typify would emit no root type)")?
        .to_owned();
    let definitions = object(root, "definitions")?;
    let endpoint_schemas = openapi
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();

    let mut root_only = root.clone();
    let root_map = root_only.as_object_mut().context("root schema")?;
    root_map.remove("definitions");
    root_map.remove("$schema");
    let mut component = root_only;
    rewrite_refs(&mut component, "#/definitions/", "#/components/schemas/");
    insert_new(openapi, &["components", "schemas"], title, component)?;
    for (name, mut schema) in definitions {
        rewrite_refs(&mut schema, "#/definitions/", "#/components/schemas/");
        insert_new(openapi, &["components", "schemas"], name, schema)?;
    }

    let mut json_schema = root.clone();
    let defs = json_schema
        .as_object_mut()
        .context("root schema")?
        .entry("definitions")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .context("definitions")?;
    for (name, mut schema) in endpoint_schemas {
        rewrite_refs(&mut schema, "#/components/schemas/", "#/definitions/");
        ensure!(
            !defs.contains_key(&name),
            "schema `{name}` is defined twice"
        );
        defs.insert(name, schema);
    }
    Ok(json_schema)
}

fn rewrite_refs(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    Value::String(reference) if key == "$ref" && reference.starts_with(from) => {
                        *reference = format!("{to}{}", &reference[from.len()..]);
                    }
                    _ => rewrite_refs(child, from, to),
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| rewrite_refs(item, from, to)),
        _ => {}
    }
}
