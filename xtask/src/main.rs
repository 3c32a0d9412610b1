//! `cargo xtask <command>`: developer commands of the refunds workspace.
//!
//! - `generate`: regenerate `generated/<provider>/src/lib.rs` from `specs/`.
//! - `generate --check`: write nothing; exit 1 and show a diff if any generated file is stale.
//! - `demo`: regenerate, then refund one order through every provider against the in-process
//!   sandbox (`cargo run -p refunds --example demo`).
//! - `schema`: rewrite `facade/refund-model.schema.json`, the JSON Schema of the unified model.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use xtask::{PROVIDERS, diff, generate, workspace_root};

const USAGE: &str = "usage: cargo xtask generate [--check] | demo | schema";

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
        ["demo"] => {
            let generated = generate_all(false)?;
            if generated != ExitCode::SUCCESS {
                return Ok(generated);
            }
            cargo(
                &["run", "--quiet", "-p", "refunds", "--example", "demo"],
                &[],
            )
        }
        // The schema is derived from the facade's types, so it is written by the facade's own
        // test (which fails when the checked-in file is stale) rather than by linking the
        // facade into the xtask: the xtask must build even when the generated code is broken.
        ["schema"] => cargo(
            &["test", "--quiet", "-p", "refunds", "--test", "model_schema"],
            &[("UPDATE_SCHEMA", "1")],
        ),
        _ => bail!("{USAGE}"),
    }
}

fn cargo(args: &[&str], env: &[(&str, &str)]) -> Result<ExitCode> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = std::process::Command::new(cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(workspace_root())
        .status()
        .context("running cargo")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
