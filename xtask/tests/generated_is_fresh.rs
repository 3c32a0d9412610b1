//! The checked-in generated crates are exactly what the specs produce (the same check as
//! `cargo xtask generate --check`), so a plain `cargo test` catches a stale or hand-edited file.

use xtask::{Mode, ProviderReport, generate, providers, workspace_root, write_or_check};

#[test]
fn checked_in_clients_match_the_specs() {
    let mut problems = Vec::new();
    for report in write_or_check(&workspace_root().unwrap(), Mode::Check).unwrap() {
        match report {
            ProviderReport::Generated { diffs, .. } => problems.extend(diffs),
            ProviderReport::Failed { provider, error } => {
                problems.push(format!("{}: {error}", provider.name));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "generated code is stale; run `cargo xtask generate` and review:\n{}",
        problems.join("\n")
    );
}

#[test]
fn generation_is_deterministic() {
    let root = workspace_root().unwrap();
    for provider in &providers(&root).unwrap() {
        let first = generate(&root, provider).unwrap();
        let second = generate(&root, provider).unwrap();
        let (first, second) = (
            first.files().map(|(_, t)| t.to_owned()),
            second.files().map(|(_, t)| t.to_owned()),
        );
        assert_eq!(
            first, second,
            "{} output differs between two runs",
            provider.name
        );
    }
}
