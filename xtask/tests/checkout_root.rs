//! The xtask acts on the checkout it is run in, not on the one it was built in (issue 14, part 4).
//!
//! Two checkouts that share one target directory (a global `CARGO_TARGET_DIR`, git worktrees)
//! share one xtask binary: cargo builds it once and reuses it from the other checkout. Here two
//! clones of this checkout are driven by that one binary (this build's `xtask`, as the second
//! checkout's `cargo xtask` would run it), once located from the current directory (the binary
//! run directly) and once through `CARGO_MANIFEST_DIR` (what `cargo run` sets, which wins over
//! the current directory). Clone `b` changes a spec that the generated Moyasar client depends
//! on; `generate --check` must pass in `a` and fail in `b`, and `generate` in `b` must write into
//! `b` only.
//!
//! The clones are made with `git clone`, so this works on a clean clone of main as CI runs it;
//! `specs/` and `generated/` are then copied over from this checkout's working tree, so that
//! uncommitted generator or spec work that the freshness test accepts is accepted here too.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The xtask binary of this build: the one both clones share.
const XTASK: &str = env!("CARGO_BIN_EXE_xtask");

/// The spec changed in clone `b`, the sentence changed, and the generated file it shows up in.
const SPEC: &str = "specs/moyasar/openapi.json";
const DESCRIPTION: &str = "Amount to refund in the order currency's minor units (100 = SAR 1.00)";
const CHANGE: &str = " Changed in clone b only.";
const GENERATED: &str = "generated/moyasar/src/lib.rs";

/// A scratch directory under the target directory, removed when the test ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs the shared binary in `dir`; `manifest_dir` is the `CARGO_MANIFEST_DIR` it sees (none
/// when run directly; `cargo test` set one for this process, which must not leak through).
fn xtask(dir: &Path, manifest_dir: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new(XTASK);
    command.args(args).current_dir(dir);
    match manifest_dir {
        Some(manifest_dir) => command.env("CARGO_MANIFEST_DIR", manifest_dir),
        None => command.env_remove("CARGO_MANIFEST_DIR"),
    };
    command.output().expect("running the xtask binary")
}

/// Copies the directory `from` to `to`, recursively.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (from, to) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&from, &to);
        } else {
            fs::copy(&from, &to).unwrap_or_else(|err| panic!("copying {}: {err}", from.display()));
        }
    }
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn assert_passes(output: &Output, what: &str) {
    assert!(output.status.success(), "{what}: {}", describe(output));
}

/// `generate --check` failed on the changed client, naming it, and on nothing else.
fn assert_stale(output: &Output, what: &str) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success()
            && stdout.contains(&format!("{GENERATED} (STALE)"))
            && stderr.contains(&format!("{GENERATED} (checked in)"))
            && stderr.contains(CHANGE.trim()),
        "{what}: expected {GENERATED} to be reported stale: {}",
        describe(output)
    );
}

#[test]
fn one_xtask_binary_acts_on_the_checkout_it_runs_in() {
    let origin = xtask::workspace_root().expect("the checkout under test");
    let scratch = Scratch(
        Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("checkout_root-{}", std::process::id())),
    );
    let _ = fs::remove_dir_all(&scratch.0);
    fs::create_dir_all(&scratch.0).unwrap();
    let (a, b) = (scratch.0.join("a"), scratch.0.join("b"));
    for clone in [&a, &b] {
        let status = Command::new("git")
            .args(["clone", "--quiet"])
            .arg(&origin)
            .arg(clone)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .status()
            .expect("running git");
        assert!(status.success(), "git clone {} failed", origin.display());
        for dir in ["specs", "generated"] {
            fs::remove_dir_all(clone.join(dir)).unwrap();
            copy_tree(&origin.join(dir), &clone.join(dir));
        }
    }

    // Clone b: a spec change that changes the generated Moyasar client.
    let spec = b.join(SPEC);
    let text = fs::read_to_string(&spec).unwrap();
    assert_eq!(
        text.matches(DESCRIPTION).count(),
        1,
        "{SPEC} no longer holds the description this test changes"
    );
    fs::write(
        &spec,
        text.replace(DESCRIPTION, &format!("{DESCRIPTION}{CHANGE}")),
    )
    .unwrap();
    let a_generated = fs::read(a.join(GENERATED)).unwrap();

    // Run directly: the checkout is found from the current directory, at its root or below.
    let check = ["generate", "--check"];
    assert_passes(&xtask(&a, None, &check), "check in clone a");
    assert_stale(&xtask(&b, None, &check), "check in clone b");
    assert_stale(
        &xtask(&b.join("facade/src"), None, &check),
        "check in a subdirectory of clone b",
    );

    // Run by `cargo run` (the `cargo xtask` alias): CARGO_MANIFEST_DIR names the checkout's
    // xtask package, and wins over the current directory.
    assert_stale(
        &xtask(&a, Some(&b.join("xtask")), &check),
        "check with CARGO_MANIFEST_DIR in clone b, run from clone a",
    );
    assert_passes(
        &xtask(&b, Some(&a.join("xtask")), &check),
        "check with CARGO_MANIFEST_DIR in clone a, run from clone b",
    );

    // `generate` in b writes into b, and nowhere else.
    let written = xtask(&b.join("specs"), None, &["generate"]);
    assert_passes(&written, "generate in clone b");
    assert!(
        String::from_utf8_lossy(&written.stdout).contains(&format!("{GENERATED} (written)")),
        "generate in clone b did not write {GENERATED}: {}",
        describe(&written)
    );
    assert!(
        fs::read_to_string(b.join(GENERATED))
            .unwrap()
            .contains(CHANGE.trim()),
        "clone b's {GENERATED} does not carry b's spec change"
    );
    assert_eq!(
        fs::read(a.join(GENERATED)).unwrap(),
        a_generated,
        "generate in clone b changed clone a's {GENERATED}"
    );
    assert!(
        !fs::read_to_string(origin.join(GENERATED))
            .unwrap()
            .contains(CHANGE.trim()),
        "generate in clone b wrote into {}",
        origin.display()
    );
    assert_passes(&xtask(&b, None, &check), "check in clone b after generate");
    assert_passes(&xtask(&a, None, &check), "check in clone a after generate");

    // Outside any checkout there is nothing to act on: an error, not the checkout it was built in.
    let outside = xtask(&std::env::temp_dir(), None, &check);
    assert!(
        !outside.status.success()
            && String::from_utf8_lossy(&outside.stderr).contains("no refunds workspace"),
        "check outside any checkout: {}",
        describe(&outside)
    );
}
