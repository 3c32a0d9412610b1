//! A new provider is a folder under `specs/` with its manifest (issue 15): the providers are
//! found there, in name order; `generate` writes the new provider's whole crate (and `--check`
//! reports each missing file); `diff` reports a provider that the compared revision does not
//! have as entirely added. Each case runs on a scratch copy of `specs/`, never on this checkout.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::specdiff::{Class, Report};
use xtask::{MANIFEST, Mode, ProviderReport, SpecKind, providers, workspace_root, write_or_check};

/// A scratch root under the target directory, removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    /// An empty scratch root named after `label`.
    fn new(label: &str) -> Scratch {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("providers-{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// A scratch root holding a copy of this checkout's `specs/`.
    fn with_specs(label: &str) -> Scratch {
        let scratch = Scratch::new(label);
        copy_tree(
            &workspace_root().unwrap().join("specs"),
            &scratch.0.join("specs"),
        );
        scratch
    }

    /// Adds provider `name` as a copy of the folder of provider `from`.
    fn add_copy(&self, from: &str, name: &str) {
        copy_tree(
            &self.0.join("specs").join(from),
            &self.0.join("specs").join(name),
        );
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (from, to) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&from, &to);
        } else {
            fs::copy(&from, &to).unwrap();
        }
    }
}

fn error_of(root: &Path) -> String {
    format!("{:#}", providers(root).unwrap_err())
}

#[test]
fn the_providers_are_the_spec_folders_in_name_order() {
    let root = workspace_root().unwrap();
    let found = providers(&root).unwrap();
    let names: Vec<&str> = found.iter().map(|p| p.name).collect();
    // Every folder of `specs/` with a manifest, by name.
    let mut folders: Vec<String> = fs::read_dir(root.join("specs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("provider.json").is_file())
        .map(|path| path.file_name().unwrap().to_str().unwrap().to_owned())
        .collect();
    folders.sort();
    assert_eq!(names, folders);
    assert!(names.len() >= 4, "{names:?}");
    let optty = found.iter().find(|p| p.name == "optty").unwrap();
    assert!(
        matches!(optty.kind, SpecKind::OpenApi { documents } if documents == [
            "openapi.json",
            "token.openapi.json",
            "details.openapi.json",
            "notifications.openapi.json",
        ]),
        "{optty:?}"
    );
    let openapp = found.iter().find(|p| p.name == "openapp").unwrap();
    assert!(
        matches!(
            openapp.kind,
            SpecKind::JsonSchema {
                schema: "refund-request.schema.json",
                endpoint: "endpoint.openapi.json",
            }
        ),
        "{openapp:?}"
    );

    // A new folder sorts in by name; a file or a hidden folder beside them is no provider.
    let scratch = Scratch::with_specs("order");
    scratch.add_copy("moyasar", "acme");
    fs::write(scratch.0.join("specs/NOTES.md"), "notes").unwrap();
    fs::create_dir_all(scratch.0.join("specs/.cache")).unwrap();
    let names: Vec<&str> = providers(&scratch.0)
        .unwrap()
        .iter()
        .map(|p| p.name)
        .collect();
    folders.push("acme".to_owned());
    folders.sort();
    assert_eq!(names, folders);
}

#[test]
fn a_folder_without_a_valid_manifest_is_an_error_naming_it() {
    let scratch = Scratch::with_specs("manifest");
    let acme = scratch.0.join("specs/acme");
    fs::create_dir_all(&acme).unwrap();
    let missing = error_of(&scratch.0);
    assert!(
        missing.contains("specs/acme/") && missing.contains(&format!("no {MANIFEST}")),
        "{missing}"
    );

    let cases = [
        (r#"{"kind": "openapi"}"#, "missing field `documents`"),
        (
            r#"{"kind": "openapi", "documents": []}"#,
            "names no document",
        ),
        (
            r#"{"kind": "openapi", "documents": ["openapi.json"], "order": 1}"#,
            "unknown field `order`",
        ),
        (r#"{"kind": "graphql"}"#, "unknown variant `graphql`"),
        (
            r#"{"kind": "json-schema", "schema": "s.json"}"#,
            "missing field `endpoint`",
        ),
        ("not json", "parsing provider.json"),
    ];
    for (manifest, expected) in cases {
        fs::write(acme.join(MANIFEST), manifest).unwrap();
        let error = error_of(&scratch.0);
        assert!(
            error.contains("specs/acme/") && error.contains(expected),
            "{manifest}: {error}"
        );
    }

    fs::remove_dir_all(&acme).unwrap();
    scratch.add_copy("moyasar", "Acme");
    let error = error_of(&scratch.0);
    assert!(
        error.contains("specs/Acme/") && error.contains("lowercase"),
        "{error}"
    );

    // Every command that lists the providers refuses to run on such a tree.
    assert!(write_or_check(&scratch.0, Mode::Check).is_err());
    assert!(Report::build(&scratch.0, "HEAD").is_err());
}

/// The states `write_or_check` gave the files of provider `name`.
fn states(reports: &[ProviderReport], name: &str) -> Vec<(String, &'static str)> {
    let report = reports
        .iter()
        .find(|report| match report {
            ProviderReport::Generated { generated, .. } => generated.provider.name == name,
            ProviderReport::Failed { provider, error } => {
                assert_ne!(provider.name, name, "{name} failed: {error}");
                false
            }
        })
        .unwrap_or_else(|| panic!("no report for {name}"));
    let ProviderReport::Generated { states, .. } = report else {
        unreachable!()
    };
    states
        .iter()
        .map(|(path, state)| (path.display().to_string(), *state))
        .collect()
}

#[test]
fn generate_writes_a_new_providers_whole_crate() {
    let scratch = Scratch::with_specs("generate");
    scratch.add_copy("moyasar", "acme");
    let crate_files = [
        "generated/acme/src/lib.rs",
        "generated/acme/openapi.normalized.json",
        "generated/acme/Cargo.toml",
        "generated/acme/README.md",
        "generated/acme/tests/examples.rs",
    ];

    // Check: every file of the missing crate is stale, and nothing is written.
    let checked = write_or_check(&scratch.0, Mode::Check).unwrap();
    let expected: Vec<(String, &str)> = crate_files
        .iter()
        .map(|file| ((*file).to_owned(), "STALE"))
        .collect();
    assert_eq!(states(&checked, "acme"), expected);
    assert!(!scratch.0.join("generated/acme").exists());

    // Write: the crate's folder is created with every file, then it is up to date.
    let written = write_or_check(&scratch.0, Mode::Write).unwrap();
    assert!(
        states(&written, "acme")
            .iter()
            .all(|(_, state)| *state == "written")
    );
    let checked = write_or_check(&scratch.0, Mode::Check).unwrap();
    assert!(
        states(&checked, "acme")
            .iter()
            .all(|(_, state)| *state == "up to date")
    );

    // The manifest, README and examples test are those of the provider it was copied from,
    // renamed.
    let real = workspace_root().unwrap();
    for file in ["Cargo.toml", "README.md", "tests/examples.rs"] {
        let copied = fs::read_to_string(real.join("generated/moyasar").join(file)).unwrap();
        let new = fs::read_to_string(scratch.0.join("generated/acme").join(file)).unwrap();
        assert_eq!(new, copied.replace("moyasar", "acme"), "{file}");
    }

    // A manifest edited by hand is stale.
    let manifest = scratch.0.join("generated/acme/Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(&manifest, text.replace("uuid.workspace = true\n", "")).unwrap();
    let checked = write_or_check(&scratch.0, Mode::Check).unwrap();
    assert!(
        states(&checked, "acme").contains(&("generated/acme/Cargo.toml".to_owned(), "STALE")),
        "{:?}",
        states(&checked, "acme")
    );
}

/// Runs git in `dir` (a scratch repository: its own identity, no global configuration needed).
fn git(dir: &Path, args: &[&str]) {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=xtask",
            "-c",
            "user.email=xtask@example.invalid",
        ])
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .expect("running git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn diff_reports_a_provider_new_since_the_revision_as_entirely_added() {
    // A repository whose first commit has today's providers; two are added after it, one
    // copied from Optty (with a webhook) and one from OpenApp (a JSON Schema provider).
    let scratch = Scratch::with_specs("diff");
    git(&scratch.0, &["init", "--quiet"]);
    git(&scratch.0, &["add", "specs"]);
    git(&scratch.0, &["commit", "--quiet", "-m", "specs"]);
    scratch.add_copy("optty", "acme");
    scratch.add_copy("openapp", "zeta");

    let report = Report::build(&scratch.0, "HEAD").unwrap();
    let text = report.to_string();
    assert_eq!(report.errors(), 0, "{text}");
    assert_eq!(report.breaking(), 0, "{text}");
    for (name, operations, webhooks) in [("acme", 3, 1), ("zeta", 1, 0)] {
        let diff = report
            .providers
            .iter()
            .find(|p| p.provider == name)
            .unwrap();
        assert!(
            diff.notes
                .iter()
                .any(|n| n.contains(&format!("specs/{name}/ is not in HEAD"))),
            "{text}"
        );
        assert!(
            diff.changes.iter().all(|c| c.class == Class::Additive),
            "{text}"
        );
        let count = |what: &str| diff.changes.iter().filter(|c| c.detail == what).count();
        assert_eq!(count("operation added"), operations, "{text}");
        assert_eq!(count("webhook added"), webhooks, "{text}");
    }
    // The providers the revision has are compared with it, as before.
    for name in ["afterpay", "moyasar", "openapp", "optty"] {
        let diff = report
            .providers
            .iter()
            .find(|p| p.provider == name)
            .unwrap();
        assert!(diff.changes.is_empty() && diff.notes.is_empty(), "{text}");
    }

    // A revision that does not exist is an error for every provider, not a new provider.
    let report = Report::build(&scratch.0, "no-such-revision").unwrap();
    assert!(
        report
            .providers
            .iter()
            .all(|p| p.errors.iter().any(|e| e.contains("no-such-revision"))),
        "{report}"
    );
    // ... and leaves no scratch folder behind.
    let left: Vec<String> = fs::read_dir(std::env::temp_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| {
            name.starts_with("xtask-diff-")
                && name.ends_with(&format!("-{}-no_such_revision", std::process::id()))
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
