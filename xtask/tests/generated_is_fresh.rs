//! The checked-in generated crates are exactly what the specs produce (the same check as
//! `cargo xtask generate --check`), so a plain `cargo test` catches a stale or hand-edited file.

use xtask::{PROVIDERS, diff, generate, workspace_root};

#[test]
fn checked_in_clients_match_the_specs() {
    let root = workspace_root();
    let mut stale = Vec::new();
    for provider in PROVIDERS {
        let generated = generate(&root, provider).expect("the specs generate");
        let current = std::fs::read_to_string(root.join(&generated.path)).unwrap_or_default();
        if current != generated.text {
            stale.push(diff(&generated.path, &current, &generated.text));
        }
    }
    assert!(
        stale.is_empty(),
        "generated code is stale; run `cargo xtask generate` and review:\n{}",
        stale.join("\n")
    );
}

#[test]
fn generation_is_deterministic() {
    let root = workspace_root();
    for provider in PROVIDERS {
        let first = generate(&root, provider).unwrap().text;
        let second = generate(&root, provider).unwrap().text;
        assert_eq!(
            first, second,
            "{} output differs between two runs",
            provider.name
        );
    }
}
