//! One snapshot per provider of its API surface after overlays: security, operations (method,
//! path, parameters, bodies, responses) and every schema's fields with type, presence and every
//! keyword that changes generated code or validation, inline objects expanded. A vendor spec or
//! overlay change shows up here as a reviewable diff.
//!
//! The providers are the ones `specs/` holds (`xtask::providers`), each with its snapshot
//! `snapshots/surface__surface_<provider>.snap`: a new provider fails here until its first
//! snapshot is reviewed (`cargo insta review`, or `INSTA_UPDATE=always`). Every provider is
//! compared before the test fails, so one failure does not hide the next.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use xtask::{providers, surface, workspace_root};

/// The snapshot files, beside this test.
fn snapshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

/// The file of a provider's snapshot.
fn snapshot_file(provider: &str) -> PathBuf {
    snapshots().join(format!("surface__surface_{provider}.snap"))
}

#[test]
fn every_provider_matches_its_surface_snapshot() {
    let root = workspace_root().unwrap();
    let providers = providers(&root).unwrap();
    assert!(!providers.is_empty(), "no provider under specs/");
    let mut failures = Vec::new();
    for provider in &providers {
        let compared = catch_unwind(AssertUnwindSafe(|| {
            let normalized = provider.normalized_spec(&root).unwrap();
            insta::assert_snapshot!(
                format!("surface_{}", provider.name),
                surface::render(&normalized.openapi)
            );
        }));
        let file = snapshot_file(provider.name);
        if !file.is_file() {
            // A new provider: insta wrote `<file>.new` (or, told not to fail, nothing). It is
            // only tested once its snapshot is checked in.
            failures.push(format!(
                "{}: no snapshot {}; review the new one with `cargo insta review`",
                provider.name,
                file.display()
            ));
        } else if compared.is_err() {
            failures.push(format!(
                "{}: the surface differs from its snapshot (diff above)",
                provider.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A snapshot whose provider is gone from `specs/` would never be compared again.
#[test]
fn every_surface_snapshot_has_its_provider() {
    let root = workspace_root().unwrap();
    let names: Vec<&str> = providers(&root).unwrap().iter().map(|p| p.name).collect();
    let mut orphans = Vec::new();
    for entry in std::fs::read_dir(snapshots()).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(name) = file
            .strip_prefix("surface__surface_")
            .and_then(|rest| rest.strip_suffix(".snap"))
            && !names.contains(&name)
        {
            orphans.push(file);
        }
    }
    assert!(
        orphans.is_empty(),
        "snapshots of no provider in specs/ (remove them): {}",
        orphans.join(", ")
    );
}
