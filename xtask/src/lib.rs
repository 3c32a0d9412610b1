//! The spec pipeline behind `cargo xtask generate [--check]`.
//!
//! vendor document(s) -> overlay (our corrections) -> normalized spec -> progenitor (OpenAPI) or
//! typify (JSON Schema) -> prettyplease -> `generated/<provider>/src/lib.rs`.
//!
//! The library half exists so that tests can run exactly what the command runs: the regeneration
//! test compares [`generate`]'s output with the checked-in files, and the surface snapshots render
//! [`Provider::normalized_spec`].
//!
//! With the `soak` feature, `soak` is the fault soak behind `cargo xtask soak`, shared in the same
//! way with its test. It links the facade and the sandbox, which the code generator must not
//! need: `cargo xtask generate` has to build when the generated crates do not.

pub mod codegen;
pub mod constraints;
pub mod money;
pub mod overlay;
pub mod precheck;
#[cfg(feature = "soak")]
pub mod soak;
pub mod spec;
pub mod specdiff;
pub mod surface;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// How a provider's contract is published.
#[derive(Debug, Clone, Copy)]
pub enum SpecKind {
    /// OpenAPI 3.0 documents (the first is the vendor's, the rest are authored additions that
    /// are merged in), generated with progenitor.
    OpenApi {
        /// Files under the provider's spec folder, merged in order.
        documents: &'static [&'static str],
    },
    /// A JSON Schema of the request body, generated with typify, plus an authored OpenAPI
    /// description of the endpoint around it (whose component schemas are generated too).
    JsonSchema {
        /// The vendor's JSON Schema.
        schema: &'static str,
        /// Our OpenAPI description of the endpoint; its request body refers to the schema's
        /// root by the root's title.
        endpoint: &'static str,
    },
}

/// One provider of the workspace: where its spec lives and where its crate is generated.
#[derive(Debug, Clone, Copy)]
pub struct Provider {
    /// Short name: the folder under `specs/` and `generated/`.
    pub name: &'static str,
    /// What the spec folder holds.
    pub kind: SpecKind,
}

/// Every provider, in the order the xtask reports them.
pub const PROVIDERS: &[Provider] = &[
    Provider {
        name: "optty",
        kind: SpecKind::OpenApi {
            documents: &[
                "openapi.json",
                "token.openapi.json",
                "details.openapi.json",
                "notifications.openapi.json",
            ],
        },
    },
    Provider {
        name: "afterpay",
        kind: SpecKind::OpenApi {
            documents: &["openapi.json", "reads.openapi.json"],
        },
    },
    Provider {
        name: "moyasar",
        kind: SpecKind::OpenApi {
            documents: &["openapi.json", "reads.openapi.json"],
        },
    },
    Provider {
        name: "openapp",
        kind: SpecKind::JsonSchema {
            schema: "refund-request.schema.json",
            endpoint: "endpoint.openapi.json",
        },
    },
];

/// Every provider's overlay file name.
pub const OVERLAY: &str = "overlay.json";

/// The root of the checkout the xtask acts on, found at run time.
///
/// Not compiled in (`env!("CARGO_MANIFEST_DIR")`): checkouts that share one target directory
/// (a global `CARGO_TARGET_DIR`, git worktrees) share one xtask binary, so a compiled-in path
/// made `cargo xtask generate --check` in one checkout check another and `cargo xtask generate`
/// write into it (issue 14). The search starts from `CARGO_MANIFEST_DIR` in the environment,
/// which `cargo run` (the `cargo xtask` alias) and `cargo test` set to this checkout's `xtask/`,
/// and otherwise (the binary run directly) from the current directory; the root is the nearest
/// directory upwards whose `Cargo.toml` has a `[workspace]` table and an `xtask/` package.
pub fn workspace_root() -> Result<PathBuf> {
    let (start, from) = match std::env::var_os("CARGO_MANIFEST_DIR") {
        Some(dir) => (PathBuf::from(dir), "CARGO_MANIFEST_DIR"),
        None => (
            std::env::current_dir().context("reading the current directory")?,
            "the current directory",
        ),
    };
    let start =
        std::path::absolute(&start).with_context(|| format!("resolving {}", start.display()))?;
    start
        .ancestors()
        .find(|dir| is_workspace_root(dir))
        .map(Path::to_path_buf)
        .with_context(|| {
            format!(
                "no refunds workspace (a Cargo.toml with [workspace] beside xtask/) in or above \
                 {} ({from}); run `cargo xtask` inside the checkout",
                start.display()
            )
        })
}

/// Whether `dir` holds a workspace manifest and this xtask's package.
fn is_workspace_root(dir: &Path) -> bool {
    let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
        return false;
    };
    let has_workspace = manifest.lines().any(|line| {
        let line = line.trim();
        line.starts_with("[workspace]") || line.starts_with("[workspace.")
    });
    has_workspace && dir.join("xtask/Cargo.toml").is_file()
}

impl Provider {
    /// `specs/<name>` under `root`.
    pub fn spec_dir(&self, root: &Path) -> PathBuf {
        root.join("specs").join(self.name)
    }

    /// The generated file, relative to the workspace root.
    pub fn output_path(&self) -> PathBuf {
        Path::new("generated").join(self.name).join("src/lib.rs")
    }

    /// The inputs, relative to the workspace root, as named in the `@generated` header.
    pub fn inputs(&self) -> Vec<String> {
        let files: Vec<&str> = match self.kind {
            SpecKind::OpenApi { documents } => documents.to_vec(),
            SpecKind::JsonSchema { schema, endpoint } => vec![schema, endpoint],
        };
        files
            .into_iter()
            .chain([OVERLAY])
            .map(|file| format!("specs/{}/{file}", self.name))
            .collect()
    }

    /// The spec after overlays, as one OpenAPI 3.0 document: what the generator and the
    /// surface snapshot see.
    pub fn normalized_spec(&self, root: &Path) -> Result<spec::Normalized> {
        spec::normalize(self, &self.spec_dir(root))
            .with_context(|| format!("normalizing specs/{}", self.name))
    }
}

/// What the pipeline produces for one provider's crate.
pub struct Generated {
    /// The provider it belongs to.
    pub provider: Provider,
    /// Path of the Rust source, relative to the workspace root.
    pub path: PathBuf,
    /// Full Rust source, header included.
    pub text: String,
    /// Path of the normalized spec written beside the crate (what the sandbox's peer checks,
    /// schemathesis and the facade's schema property test read), relative to the root.
    pub spec_path: PathBuf,
    /// The normalized OpenAPI document, pretty JSON with sorted keys.
    pub spec_text: String,
    /// Number of operations in the normalized spec.
    pub operations: usize,
    /// Number of named schemas in the normalized spec.
    pub schemas: usize,
}

impl Generated {
    /// The files of this provider's crate that the pipeline writes: (path, text).
    pub fn files(&self) -> [(&Path, &str); 2] {
        [
            (self.path.as_path(), self.text.as_str()),
            (self.spec_path.as_path(), self.spec_text.as_str()),
        ]
    }
}

/// Runs the whole pipeline for one provider, in memory.
pub fn generate(root: &Path, provider: &Provider) -> Result<Generated> {
    let normalized = provider.normalized_spec(root)?;
    precheck::check(&normalized.openapi)
        .with_context(|| format!("specs/{} cannot be generated", provider.name))?;
    let floats = money::check(provider, &normalized.openapi);
    if !floats.is_empty() {
        let listed: Vec<String> = floats.iter().map(ToString::to_string).collect();
        anyhow::bail!(
            "specs/{} cannot be generated: {} number(s) would be f64:\n{}",
            provider.name,
            floats.len(),
            listed.join("\n")
        );
    }
    let text = codegen::render(provider, &normalized)
        .with_context(|| format!("generating the {} client", provider.name))?;
    let spec_text = serde_json::to_string_pretty(&normalized.openapi)? + "\n";
    Ok(Generated {
        provider: *provider,
        path: provider.output_path(),
        spec_path: Path::new("generated")
            .join(provider.name)
            .join("openapi.normalized.json"),
        operations: surface::operation_count(&normalized.openapi),
        schemas: surface::schema_count(&normalized.openapi),
        text,
        spec_text,
    })
}

/// Whether [`write_or_check`] may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Write every file that differs.
    Write,
    /// Write nothing; report stale files with a diff.
    Check,
}

/// What [`write_or_check`] found for one provider.
pub enum ProviderReport {
    /// The pipeline ran: each file's path and state.
    Generated {
        /// The provider's output.
        generated: Generated,
        /// Per file: its path and `up to date`, `written` or `STALE`.
        states: Vec<(PathBuf, &'static str)>,
        /// The diffs of stale files (check mode).
        diffs: Vec<String>,
    },
    /// The pipeline failed for this provider (the message names the cause).
    Failed {
        /// The provider.
        provider: Provider,
        /// Why, with its context chain.
        error: String,
    },
}

/// Regenerates every provider and writes (or, in [`Mode::Check`], compares) its files: the one
/// function behind `cargo xtask generate [--check]` and the freshness test. Every provider is
/// tried, so one broken spec does not hide the next.
pub fn write_or_check(root: &Path, mode: Mode) -> Result<Vec<ProviderReport>> {
    let mut reports = Vec::new();
    for provider in PROVIDERS {
        let generated = match generate(root, provider) {
            Ok(generated) => generated,
            Err(error) => {
                reports.push(ProviderReport::Failed {
                    provider: *provider,
                    error: format!("{error:#}"),
                });
                continue;
            }
        };
        let mut states = Vec::new();
        let mut diffs = Vec::new();
        for (path, text) in generated.files() {
            let full = root.join(path);
            let current = std::fs::read_to_string(&full).unwrap_or_default();
            let state = if current == text {
                "up to date"
            } else if mode == Mode::Check {
                diffs.push(diff(path, &current, text));
                "STALE"
            } else {
                std::fs::write(&full, text)
                    .with_context(|| format!("writing {}", full.display()))?;
                "written"
            };
            states.push((path.to_path_buf(), state));
        }
        reports.push(ProviderReport::Generated {
            generated,
            states,
            diffs,
        });
    }
    Ok(reports)
}

/// A unified diff of `old` against `new`, labelled with `path`.
pub fn diff(path: &Path, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("{} (checked in)", path.display()),
            &format!("{} (from specs)", path.display()),
        )
        .to_string()
}
