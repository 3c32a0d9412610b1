//! The spec pipeline behind `cargo xtask generate [--check]`.
//!
//! vendor document(s) -> overlay (our corrections) -> normalized spec -> progenitor (OpenAPI) or
//! typify (JSON Schema) -> prettyplease -> `generated/<provider>/src/lib.rs`.
//!
//! The library half exists so that tests can run exactly what the command runs: the regeneration
//! test compares [`generate`]'s output with the checked-in files, and the surface snapshots render
//! [`Provider::normalized_spec`].

pub mod codegen;
pub mod constraints;
pub mod overlay;
pub mod precheck;
pub mod spec;
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
            documents: &["openapi.json", "token.openapi.json"],
        },
    },
    Provider {
        name: "afterpay",
        kind: SpecKind::OpenApi {
            documents: &["openapi.json"],
        },
    },
    Provider {
        name: "moyasar",
        kind: SpecKind::OpenApi {
            documents: &["openapi.json"],
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

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
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

/// The generated source of one provider's crate.
pub struct Generated {
    /// The provider it belongs to.
    pub provider: Provider,
    /// Path relative to the workspace root.
    pub path: PathBuf,
    /// Full file text, header included.
    pub text: String,
    /// Number of operations in the normalized spec.
    pub operations: usize,
    /// Number of named schemas in the normalized spec.
    pub schemas: usize,
}

/// Runs the whole pipeline for one provider, in memory.
pub fn generate(root: &Path, provider: &Provider) -> Result<Generated> {
    let normalized = provider.normalized_spec(root)?;
    precheck::check(&normalized.openapi)
        .with_context(|| format!("specs/{} cannot be generated", provider.name))?;
    let text = codegen::render(provider, &normalized)
        .with_context(|| format!("generating the {} client", provider.name))?;
    Ok(Generated {
        provider: *provider,
        path: provider.output_path(),
        operations: surface::operation_count(&normalized.openapi),
        schemas: surface::schema_count(&normalized.openapi),
        text,
    })
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
