//! The facade's integration tests, one test binary with a module per subject. Two stay binaries
//! of their own, since they observe the whole process: `tests/answer_memory.rs` measures its
//! peak memory, and `tests/tracing_spans.rs` installs a subscriber (tracing caches each
//! callsite's interest process-wide, so spans other tests create first would be missed).
//!
//! Fixtures shared with the journal's tests, the benchmarks and the soak (currencies, sample
//! requests, seeded sandbox orders, clients against the sandbox) come from `test_support`
//! (`test-support/`). Snapshots live in `tests/snapshots/` (see [`snapshots`]), the realistic
//! answers in `tests/answers/`.

mod config;
mod deadline;
mod e2e;
mod find;
mod model;
mod model_schema;
mod money_props;
mod moyasar_large_order;
mod moyasar_order;
mod one_path;
mod schema_agreement;
mod secrets;
mod serialize;
mod signing;
mod single_flight;
mod wire_snapshots;

/// Runs `assertions` with insta writing and reading snapshots in `facade/tests/snapshots/` (a
/// relative snapshot path is relative to the asserting file, here `tests/it/`). Snapshot names
/// start with the module path: `it__<module>__<name>.snap`.
fn snapshots<R>(assertions: impl FnOnce() -> R) -> R {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.bind(assertions)
}
