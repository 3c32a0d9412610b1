//! One snapshot per provider of its API surface after overlays: operations (method, path,
//! parameters, bodies, responses) and every schema's fields with type, presence and
//! constraints. A vendor spec or overlay change shows up here as a reviewable diff.

use xtask::{PROVIDERS, surface, workspace_root};

#[test]
fn api_surface_after_overlays() {
    let root = workspace_root();
    for provider in PROVIDERS {
        let normalized = provider.normalized_spec(&root).unwrap();
        insta::assert_snapshot!(
            format!("surface_{}", provider.name),
            surface::render(&normalized.openapi)
        );
    }
}
