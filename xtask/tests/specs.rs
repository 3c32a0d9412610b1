//! Properties of `specs/` itself: vendor documents are as published, the published Optty spec
//! really needs its overlay, and a spec edit changes the generated output.

use std::path::{Path, PathBuf};

use serde_json::Value;
use xtask::{Provider, generate, precheck, providers, workspace_root};

/// The providers' documentation, beside the workspace (as in CI), if present.
fn provider_docs() -> Option<PathBuf> {
    let dir = workspace_root().unwrap().join("../shared/provider-docs");
    dir.is_dir().then_some(dir)
}

/// Every provider of this checkout.
fn all() -> Vec<Provider> {
    providers(&workspace_root().unwrap()).unwrap()
}

/// The provider named `name`.
fn provider(name: &str) -> Provider {
    all()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no provider {name}"))
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Fails with a unified diff of the two documents, pretty-printed, when they differ.
fn assert_same_document(vendored_path: &str, vendored: &Value, published: &Value) {
    if vendored != published {
        let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap() + "\n";
        panic!(
            "{vendored_path} is not the published document:\n{}",
            xtask::diff(
                Path::new(vendored_path),
                &pretty(published),
                &pretty(vendored)
            )
        );
    }
}

#[test]
fn optty_vendor_document_is_the_published_json() {
    let Some(docs) = provider_docs() else {
        eprintln!("../shared/provider-docs not found; skipping the provenance comparison");
        return;
    };
    let page = std::fs::read_to_string(docs.join("optty-refund-openapi.md")).unwrap();
    let published = page
        .lines()
        .find(|line| line.starts_with("{\"openapi\""))
        .expect("the page embeds the spec on one line");
    let published: Value = serde_json::from_str(published).unwrap();
    let vendored = json_file(&workspace_root().unwrap().join("specs/optty/openapi.json"));
    assert_same_document("specs/optty/openapi.json", &vendored, &published);
}

#[test]
fn openapp_vendor_schema_is_the_published_json() {
    let Some(docs) = provider_docs() else {
        eprintln!("../shared/provider-docs not found; skipping the provenance comparison");
        return;
    };
    let page = std::fs::read_to_string(docs.join("openapp-refund.txt")).unwrap();
    let start = page.find("{\n    \"additionalProperties\"").unwrap();
    let mut stream = serde_json::Deserializer::from_str(&page[start..]).into_iter::<Value>();
    let published = stream.next().unwrap().unwrap();
    let vendored = json_file(
        &workspace_root()
            .unwrap()
            .join("specs/openapp/refund-request.schema.json"),
    );
    assert_same_document(
        "specs/openapp/refund-request.schema.json",
        &vendored,
        &published,
    );
}

#[test]
fn published_optty_spec_without_overlay_is_rejected_before_progenitor() {
    let vendored = json_file(&workspace_root().unwrap().join("specs/optty/openapi.json"));
    let err = precheck::check(&vendored).unwrap_err().to_string();
    assert!(
        err.contains("RefundsController_refundOrder (POST /orders/{orderReference}/refund)"),
        "{err}"
    );
    assert!(
        err.contains("error responses have 3 different body types"),
        "{err}"
    );
}

/// AfterPay documents 401 and 500 without a body beside a 400 with one: the normalized spec
/// keeps all three (the surface, constraints and change report see them), progenitor's copy
/// drops the body-less ones, and two different error bodies are still refused.
#[test]
fn bodyless_error_statuses_are_kept_but_not_given_to_progenitor() {
    let root = workspace_root().unwrap();
    let afterpay = provider("afterpay");
    let normalized = afterpay.normalized_spec(&root).unwrap().openapi;
    let responses = |spec: &serde_json::Value| {
        let operation = &spec["paths"]["/api/v3/orders/{orderNumber}/refunds"]["post"];
        let mut statuses: Vec<String> = operation["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        statuses.sort();
        statuses
    };
    assert_eq!(responses(&normalized), ["200", "400", "401", "500"]);
    precheck::check(&normalized).expect("body-less errors beside a bodied one are fine");
    assert_eq!(
        responses(&precheck::for_progenitor(&normalized)),
        ["200", "400"]
    );

    let mut two_bodies = normalized.clone();
    two_bodies["paths"]["/api/v3/orders/{orderNumber}/refunds"]["post"]["responses"]["500"] = serde_json::json!({
        "description": "x",
        "content": { "application/json": { "schema": { "type": "string" } } }
    });
    let err = precheck::check(&two_bodies).unwrap_err().to_string();
    assert!(
        err.contains("refundOrder (POST /api/v3/orders/{orderNumber}/refunds)"),
        "{err}"
    );
}

fn copy_specs(to: &Path) {
    for provider in &all() {
        let from = workspace_root().unwrap().join("specs").join(provider.name);
        let dest = to.join("specs").join(provider.name);
        std::fs::create_dir_all(&dest).unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), dest.join(entry.file_name())).unwrap();
            }
        }
    }
}

#[test]
fn changing_any_max_length_changes_the_generated_code() {
    let scratch = std::env::temp_dir().join(format!("xtask-maxlength-{}", std::process::id()));
    let mut edited = 0;
    for provider in &all() {
        let _ = std::fs::remove_dir_all(&scratch);
        copy_specs(&scratch);
        let before = generate(&scratch, provider).unwrap().text;
        let dir = scratch.join("specs").join(provider.name);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            if path.file_name().unwrap() == "overlay.json" || !text.contains("\"maxLength\": 36") {
                continue;
            }
            std::fs::write(
                &path,
                text.replacen("\"maxLength\": 36", "\"maxLength\": 37", 1),
            )
            .unwrap();
            let after = generate(&scratch, provider).unwrap().text;
            assert_ne!(
                before,
                after,
                "{} did not change the output",
                path.display()
            );
            edited += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(
        edited >= 2,
        "expected maxLength 36 in the Moyasar and OpenApp specs"
    );
}

/// Every document we author (all but Optty's published `openapi.json` and OpenApp's published
/// JSON Schema) says so at its top and names the documentation it was written from.
#[test]
fn authored_documents_state_their_sources() {
    let root = workspace_root().unwrap();
    let mut checked = 0;
    for provider in &all() {
        let files: Vec<&str> = match provider.kind {
            xtask::SpecKind::OpenApi { documents } => documents.to_vec(),
            xtask::SpecKind::JsonSchema { endpoint, .. } => vec![endpoint],
        };
        for file in files {
            if (provider.name, file) == ("optty", "openapi.json") {
                continue; // as published
            }
            let document = json_file(&provider.spec_dir(&root).join(file));
            let description = document["info"]["description"].as_str().unwrap_or_default();
            assert!(
                description.starts_with("AUTHORED"),
                "specs/{}/{file}: info.description does not say it is authored",
                provider.name
            );
            assert!(
                description.contains("https://") || description.contains("provider-docs/"),
                "specs/{}/{file}: info.description names no documentation page",
                provider.name
            );
            checked += 1;
        }
    }
    assert!(checked >= 7, "{checked} authored documents");
}

/// Each example file's name is `<operation>.<part>[.<label>].json` where `<operation>` is an
/// operation's or webhook's `x-example-name` (or operationId) and `<part>` is `request` (the
/// operation has a request body) or one of its responses' keys, or a code a range covers; and
/// every operation with a body names its examples.
#[test]
fn every_example_names_an_operation_and_part_of_its_spec() {
    let root = workspace_root().unwrap();
    let mut problems = Vec::new();
    for provider in &all() {
        let spec = provider.normalized_spec(&root).unwrap().openapi;
        let operations: Vec<&Value> = xtask::spec::operations(&spec)
            .chain(xtask::spec::webhooks(&spec))
            .map(|(_, _, operation)| operation)
            .collect();
        for operation in &operations {
            if operation.get(xtask::codegen::EXAMPLE_NAME).is_none() {
                problems.push(format!(
                    "{}: {} has no {}",
                    provider.name,
                    operation["operationId"],
                    xtask::codegen::EXAMPLE_NAME
                ));
            }
        }
        let dir = provider.spec_dir(&root).join("examples");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let mut parts = stem.split('.');
            let (name, part) = (parts.next().unwrap(), parts.next().unwrap_or_default());
            let Some(operation) = operations
                .iter()
                .find(|op| op[xtask::codegen::EXAMPLE_NAME] == name || op["operationId"] == name)
            else {
                problems.push(format!("{}: no operation is named {name}", path.display()));
                continue;
            };
            let responses = operation["responses"].as_object().unwrap();
            let described = if part == "request" {
                operation.get("requestBody").is_some()
            } else {
                responses.contains_key(part)
                    || part.len() == 3
                        && responses.keys().any(|key| {
                            key.len() == 3 && key.ends_with("XX") && part.starts_with(&key[..1])
                        })
            };
            if !described {
                problems.push(format!(
                    "{}: {name} has no {part} in the spec",
                    path.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The read operations and Optty's notification are merged from their authored documents, and
/// every operation (reads included) gets its method and path constants, as the refund does.
#[test]
fn reads_and_the_notification_are_merged_and_get_their_constants() {
    let root = workspace_root().unwrap();
    let expected: &[(&str, &[&str])] = &[
        (
            "optty",
            &[
                "getTransactionDetails",
                "RefundsController_refundOrder",
                "createAccessToken",
            ],
        ),
        ("afterpay", &["getOrder", "getRefunds", "refundOrder"]),
        ("moyasar", &["retrieveOrder", "refundOrder"]),
        ("openapp", &["refundOrder"]),
    ];
    for (name, operation_ids) in expected {
        let generated = generate(&root, &provider(name)).unwrap();
        let spec: Value = serde_json::from_str(&generated.spec_text).unwrap();
        let mut found: Vec<&str> = xtask::spec::operations(&spec)
            .filter_map(|(_, _, op)| op["operationId"].as_str())
            .collect();
        found.sort_unstable();
        let mut wanted = operation_ids.to_vec();
        wanted.sort_unstable();
        assert_eq!(found, wanted, "{name}");
        for (method, path, operation) in xtask::spec::operations(&spec) {
            let id = operation["operationId"].as_str().unwrap();
            let module = xtask::codegen::snake_case(id);
            for needle in [
                format!("pub mod {module} {{"),
                format!("pub const METHOD: &str = \"{}\";", method.to_uppercase()),
                format!("pub const PATH: &str = \"{path}\";"),
            ] {
                assert!(
                    generated.text.contains(&needle),
                    "{name} {id}: no `{needle}`"
                );
            }
        }
    }
    let optty = provider("optty");
    let spec = optty.normalized_spec(&root).unwrap().openapi;
    let hooks: Vec<&str> = xtask::spec::webhooks(&spec)
        .filter_map(|(_, _, op)| op["operationId"].as_str())
        .collect();
    assert_eq!(hooks, ["orderNotification"]);
    assert!(
        spec.pointer("/components/schemas/OrderNotification")
            .is_some()
    );
    let text = generate(&root, &optty).unwrap().text;
    assert!(text.contains("pub const QUERY_PARAMETERS: &[&str] = &[\"merchantId\"];"));
}
