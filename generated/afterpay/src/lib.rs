//! placeholder until `cargo xtask generate` runs
