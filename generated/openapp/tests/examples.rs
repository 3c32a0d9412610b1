//! Written by `cargo xtask generate`: every documented payload in `specs/openapp/examples/`
//! decodes through the generated type of its operation and part (`roundtrip_example`)
//! and re-encodes to an equivalent JSON value.

#[test]
fn every_documented_payload_decodes_and_reencodes() {
    workspace_tests::assert_examples_roundtrip("openapp", openapp_api::roundtrip_example);
}
