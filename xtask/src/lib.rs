//! The spec pipeline behind `cargo xtask generate [--check]`.
//!
//! vendor document(s) -> overlay (our corrections) -> normalized spec -> progenitor (OpenAPI) or
//! typify (JSON Schema) -> prettyplease -> `generated/<provider>/src/lib.rs`, beside the
//! normalized spec, the crate's `Cargo.toml` and `README.md`, and its test of the documented
//! payloads (`tests/examples.rs`).
//!
//! The providers are the folders under `specs/`, found by [`providers`]: each holds a manifest,
//! `specs/<provider>/provider.json` ([`MANIFEST`]), that says how its contract is published:
//!
//! ```json
//! {"kind": "openapi", "documents": ["openapi.json", "reads.openapi.json"]}
//! {"kind": "json-schema", "schema": "refund-request.schema.json", "endpoint": "endpoint.openapi.json"}
//! ```
//!
//! beside its documents, its `overlay.json` and its `examples/`. They are reported in name
//! order. That folder is all a new provider needs in the xtask: `generate` writes its whole crate
//! (`generated/<provider>/`: `src/lib.rs`, `openapi.normalized.json`, and the `Cargo.toml`,
//! `README.md` and `tests/examples.rs` of [`codegen::manifest`], [`codegen::readme`] and
//! [`codegen::examples_test`], each checked by `--check`), the workspace takes it as a member
//! (`generated/*`), `diff` reports a provider that the compared revision does not have as
//! entirely added, the surface test asks for its snapshot and `bench` gives it a row. (The
//! facade's and the sandbox's rooms are outside the xtask.)
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

/// How a provider's contract is published: the `kind` of its [`MANIFEST`].
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
///
/// Read from the provider's [`MANIFEST`] by [`providers`]. The strings are leaked (a few bytes
/// per provider and call, in a short-lived command or test), so a provider stays `Copy` and
/// can be written as a constant in tests.
#[derive(Debug, Clone, Copy)]
pub struct Provider {
    /// Short name: the folder under `specs/` and `generated/`.
    pub name: &'static str,
    /// What the spec folder holds.
    pub kind: SpecKind,
}

/// The file that makes a folder under `specs/` a provider, and says how its spec is published:
///
/// ```json
/// {"kind": "openapi", "documents": ["openapi.json", "reads.openapi.json"]}
/// {"kind": "json-schema", "schema": "refund-request.schema.json", "endpoint": "endpoint.openapi.json"}
/// ```
///
/// - `openapi`: `documents`, the OpenAPI 3.0 files merged in order, the vendor's first
///   ([`SpecKind::OpenApi`]);
/// - `json-schema`: `schema`, the vendor's JSON Schema of the request body, and `endpoint`, our
///   OpenAPI description of the endpoint around it ([`SpecKind::JsonSchema`]).
///
/// File names are relative to the provider's folder, which also holds [`OVERLAY`] (and
/// `examples/`). No other key is accepted, so a misspelt one is an error rather than ignored.
/// Every folder under `specs/` is a provider and must hold one (folders whose name starts with
/// `.` aside); the folder's name is the provider's, made of lowercase ASCII letters and digits
/// (it names the crate `<name>-api` and the `<name>_api` paths the xtask writes). Nothing else
/// in the xtask names a provider (see the crate's documentation).
pub const MANIFEST: &str = "provider.json";

/// The manifest's shape (see [`MANIFEST`]).
#[derive(serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum Manifest {
    #[serde(rename = "openapi")]
    OpenApi {
        documents: Vec<String>,
    },
    JsonSchema {
        schema: String,
        endpoint: String,
    },
}

/// Every provider of the checkout at `root`: each folder under `specs/` with its [`MANIFEST`],
/// in name order (the order the xtask reports them in). A folder without a manifest, a
/// manifest that does not parse, or a name that cannot name a crate is an error naming it.
pub fn providers(root: &Path) -> Result<Vec<Provider>> {
    let specs = root.join("specs");
    let entries =
        std::fs::read_dir(&specs).with_context(|| format!("reading {}", specs.display()))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", specs.display()))?;
        if !entry.path().is_dir() {
            continue;
        }
        let name = entry.file_name();
        let name = name
            .to_str()
            .with_context(|| format!("specs/{}: the name is not UTF-8", name.display()))?;
        if !name.starts_with('.') {
            names.push(name.to_owned());
        }
    }
    names.sort();
    names
        .into_iter()
        .map(|name| {
            provider_in(&specs.join(&name), &name)
                .with_context(|| format!("specs/{name}/ is not a provider"))
        })
        .collect()
}

/// The provider whose folder `dir` is named `name`.
fn provider_in(dir: &Path, name: &str) -> Result<Provider> {
    anyhow::ensure!(
        name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "a provider's name is lowercase ASCII letters and digits, starting with a letter (it \
         names the crate `<name>-api`)"
    );
    let path = dir.join(MANIFEST);
    anyhow::ensure!(
        path.is_file(),
        "it has no {MANIFEST} (every folder under specs/ is a provider, described by its \
         {MANIFEST}, e.g. {{\"kind\": \"openapi\", \"documents\": [\"openapi.json\"]}}; see \
         xtask::MANIFEST)"
    );
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {MANIFEST}"))?;
    let manifest: Manifest =
        serde_json::from_str(&text).with_context(|| format!("parsing {MANIFEST}"))?;
    let leak = |text: String| -> &'static str { Box::leak(text.into_boxed_str()) };
    let kind = match manifest {
        Manifest::OpenApi { documents } => {
            anyhow::ensure!(
                !documents.is_empty(),
                "{MANIFEST}: `documents` names no document"
            );
            let documents: Vec<&'static str> = documents.into_iter().map(leak).collect();
            SpecKind::OpenApi {
                documents: Box::leak(documents.into_boxed_slice()),
            }
        }
        Manifest::JsonSchema { schema, endpoint } => SpecKind::JsonSchema {
            schema: leak(schema),
            endpoint: leak(endpoint),
        },
    };
    Ok(Provider {
        name: leak(name.to_owned()),
        kind,
    })
}

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
    /// Path of the crate's `Cargo.toml`, relative to the root.
    pub manifest_path: PathBuf,
    /// The crate's manifest ([`codegen::manifest`]).
    pub manifest_text: String,
    /// Path of the crate's `README.md`, relative to the root.
    pub readme_path: PathBuf,
    /// The crate's README ([`codegen::readme`]).
    pub readme_text: String,
    /// Path of the crate's test of the documented payloads, relative to the root.
    pub examples_test_path: PathBuf,
    /// That test ([`codegen::examples_test`]).
    pub examples_test_text: String,
    /// Number of operations in the normalized spec.
    pub operations: usize,
    /// Number of named schemas in the normalized spec.
    pub schemas: usize,
}

impl Generated {
    /// The files of this provider's crate that the pipeline writes: (path, text).
    pub fn files(&self) -> [(&Path, &str); 5] {
        [
            (self.path.as_path(), self.text.as_str()),
            (self.spec_path.as_path(), self.spec_text.as_str()),
            (self.manifest_path.as_path(), self.manifest_text.as_str()),
            (self.readme_path.as_path(), self.readme_text.as_str()),
            (
                self.examples_test_path.as_path(),
                self.examples_test_text.as_str(),
            ),
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
    let crate_dir = Path::new("generated").join(provider.name);
    Ok(Generated {
        provider: *provider,
        path: provider.output_path(),
        spec_path: crate_dir.join("openapi.normalized.json"),
        manifest_path: crate_dir.join("Cargo.toml"),
        manifest_text: codegen::manifest(provider, &text),
        readme_path: crate_dir.join("README.md"),
        readme_text: codegen::readme(provider),
        examples_test_path: crate_dir.join("tests/examples.rs"),
        examples_test_text: codegen::examples_test(provider),
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
        /// The provider's output (boxed: it holds the crate's files).
        generated: Box<Generated>,
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

/// Regenerates every provider (see [`providers`]) and writes (or, in [`Mode::Check`],
/// compares) its files, creating the crate's folder if needed: the one function behind
/// `cargo xtask generate [--check]` and the freshness test. Every provider is tried, so one
/// broken spec does not hide the next; a missing file is stale.
pub fn write_or_check(root: &Path, mode: Mode) -> Result<Vec<ProviderReport>> {
    let mut reports = Vec::new();
    for provider in providers(root)? {
        let generated = match generate(root, &provider) {
            Ok(generated) => generated,
            Err(error) => {
                reports.push(ProviderReport::Failed {
                    provider,
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
                if let Some(dir) = full.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                std::fs::write(&full, text)
                    .with_context(|| format!("writing {}", full.display()))?;
                "written"
            };
            states.push((path.to_path_buf(), state));
        }
        reports.push(ProviderReport::Generated {
            generated: Box::new(generated),
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
