//! `cargo xtask <command>`: developer commands of the refunds workspace.
//!
//! - `generate`: regenerate `generated/<provider>/src/lib.rs` from `specs/`.
//! - `generate --check`: write nothing; exit 1 and show a diff if any generated file is stale.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use xtask::{PROVIDERS, diff, generate, workspace_root};

const USAGE: &str = "usage: cargo xtask generate [--check]";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<ExitCode> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["generate"] => generate_all(false),
        ["generate", "--check"] => generate_all(true),
        _ => bail!("{USAGE}"),
    }
}

fn generate_all(check: bool) -> Result<ExitCode> {
    let root = workspace_root();
    let mut stale = Vec::new();
    for provider in PROVIDERS {
        let generated = generate(&root, provider)?;
        let path = root.join(&generated.path);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        let state = if current == generated.text {
            "up to date"
        } else if check {
            eprint!("{}", diff(&generated.path, &current, &generated.text));
            stale.push(generated.path.display().to_string());
            "STALE"
        } else {
            std::fs::write(&path, &generated.text)
                .with_context(|| format!("writing {}", path.display()))?;
            "written"
        };
        println!(
            "{:<9} {} operations, {} schemas -> {} ({state})",
            provider.name,
            generated.operations,
            generated.schemas,
            generated.path.display()
        );
    }
    if stale.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: {} generated file(s) differ from what specs/ produce: {}\n\
             run `cargo xtask generate` and review the diff",
            stale.len(),
            stale.join(", ")
        );
        Ok(ExitCode::FAILURE)
    }
}
