//! The JSON Schema of the unified model (`facade/refund-model.schema.json`), for services in
//! other languages. Like rust-analyzer's codegen tests: the checked-in file must equal what the
//! types produce; `cargo xtask schema` (UPDATE_SCHEMA=1) rewrites it.

use refunds::{Refund, RefundRequest};

fn schema_text() -> String {
    let mut root = serde_json::Map::new();
    root.insert(
        "$comment".to_owned(),
        "Generated from the refunds crate's types by `cargo xtask schema`; do not edit.".into(),
    );
    root.insert(
        "RefundRequest".to_owned(),
        serde_json::to_value(schemars::schema_for!(RefundRequest)).unwrap(),
    );
    root.insert(
        "Refund".to_owned(),
        serde_json::to_value(schemars::schema_for!(Refund)).unwrap(),
    );
    serde_json::to_string_pretty(&root).unwrap() + "\n"
}

#[test]
fn checked_in_schema_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("refund-model.schema.json");
    let expected = schema_text();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &expected).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == expected,
        "{} is stale: run `cargo xtask schema` and review the diff",
        path.display()
    );
}

#[test]
fn schema_names_the_required_request_fields() {
    let schema: serde_json::Value = serde_json::from_str(&schema_text()).unwrap();
    let required = schema["RefundRequest"]["required"].as_array().unwrap();
    for field in ["provider", "order_id", "amount", "merchant_reference"] {
        assert!(required.iter().any(|f| f == field), "{field} not required");
    }
    // The whole schema's diff is reviewed in `refund-model.schema.json` itself (kept current by
    // `checked_in_schema_is_current`), not in a snapshot of the same text.
}
