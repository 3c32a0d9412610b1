//! One snapshot per provider of its API surface after overlays: security, operations (method,
//! path, parameters, bodies, responses) and every schema's fields with type, presence and every
//! keyword that changes generated code or validation, inline objects expanded. A vendor spec or
//! overlay change shows up here as a reviewable diff; one test per provider, so one failure
//! does not hide the next.

use xtask::{PROVIDERS, surface, workspace_root};

fn surface_of(name: &str) -> String {
    let provider = PROVIDERS
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no provider {name}"));
    let normalized = provider
        .normalized_spec(&workspace_root().unwrap())
        .unwrap();
    surface::render(&normalized.openapi)
}

macro_rules! surface_snapshots {
    ($($provider:ident),+) => {$(
        #[test]
        fn $provider() {
            insta::assert_snapshot!(
                concat!("surface_", stringify!($provider)),
                surface_of(stringify!($provider))
            );
        }
    )+};
}

surface_snapshots!(optty, afterpay, moyasar, openapp);

#[test]
fn every_provider_has_a_snapshot_test() {
    let tested = ["optty", "afterpay", "moyasar", "openapp"];
    for provider in PROVIDERS {
        assert!(
            tested.contains(&provider.name),
            "{} has no surface test",
            provider.name
        );
    }
}
