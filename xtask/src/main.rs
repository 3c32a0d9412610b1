//! `cargo xtask <command>`: developer commands of the refunds workspace.
//!
//! - `generate`: regenerate each provider's crate from `specs/<provider>/` (every folder there
//!   with its `provider.json` is a provider, see `xtask::MANIFEST`): `generated/<provider>/`
//!   `src/lib.rs`, `openapi.normalized.json`, `Cargo.toml`, `README.md` and `tests/examples.rs`,
//!   created if missing.
//! - `generate --check`: write nothing; exit 1 and show a diff if any generated file is stale
//!   or missing.
//! - `demo`: regenerate, then refund one order through every provider against the in-process
//!   sandbox (`cargo run -p refunds --example demo`), then the same through the durable
//!   journal with an injected fault and its reconciliation
//!   (`cargo run -p refunds-journal --example journaled_demo`).
//! - `diff [REV] [--accept-breaking]`: classify every change of the normalized specs between git
//!   revision REV (default `HEAD`) and the working tree as breaking for callers, additive or
//!   without effect, naming the hand-written code each touches (a provider REV does not have:
//!   every operation added); exit 1 on a breaking change unless `--accept-breaking`
//!   acknowledges it (see `xtask::specdiff`).
//! - `schema`: rewrite `facade/refund-model.schema.json`, the JSON Schema of the unified model.
//! - `soak [--mode retry] [--refunds N] [--seed S] [--concurrency C]`: send N refunds (default
//!   10000) through the facade's retry executor against the in-process sandbox under random
//!   (seeded) faults, print a table per provider, and exit 1 if the ledger shows a refund
//!   duplicated, lost or contradicted, a misclassified settlement or a panic (see `xtask::soak`).
//! - `soak --mode settle [--refunds N] [--seed S] [--concurrency C] [--read-delay-ms D]
//!   [--settling-ms D] [--max-rounds R]`: send N refunds (default 2000) through the durable
//!   journal under crashes, after-commit faults, dropped connections, 503s, read faults and a
//!   read delay, then reconcile in rounds while the sandbox settles every pending refund; print a
//!   table per provider and exit 1 if a refund is duplicated, lost, mismatched, left pending or
//!   for a person, or the journal failed (see `xtask::soak::settle`). `soak --help` says more.
//! - `bench [--report-only]`: run the facade's and the journal's criterion benchmarks
//!   (`cargo bench -p refunds`, `cargo bench -p refunds-journal`) and print one table: encode +
//!   decode per refund, facade against direct generated-client throughput on the loopback
//!   sandbox (sequential and 32 tasks), the growth of a refund's cost with the order's earlier
//!   refunds, journaled refunds on SQLite and PostgreSQL (with `REFUNDS_JOURNAL_PG_URL`) beside
//!   the floor of the same durable writes, and the machine's load (see `bench.rs`).

mod ab;
mod bench;

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use xtask::{Mode, ProviderReport, workspace_root, write_or_check};

const USAGE: &str = "usage: cargo xtask generate [--check] | diff [REV] [--accept-breaking] | demo | schema | soak [--mode retry|settle] [OPTIONS] (soak --help) | bench [--report-only] | ab <REV> <BENCH> [FILTER] [--rounds N]";

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
            let facade = cargo(
                &["run", "--quiet", "-p", "refunds", "--example", "demo"],
                &[],
            )?;
            if facade != ExitCode::SUCCESS {
                return Ok(facade);
            }
            // The same refunds through the durable journal (SQLite in a temporary file), with a
            // fault that leaves one unresolved and its reconciliation.
            cargo(
                &[
                    "run",
                    "--quiet",
                    "-p",
                    "refunds-journal",
                    "--example",
                    "journaled_demo",
                ],
                &[],
            )
        }
        // The schema is derived from the facade's types, so it is written by the facade's own
        // test (which fails when the checked-in file is stale) rather than by linking the
        // facade into the xtask: the xtask must build even when the generated code is broken.
        ["schema"] => cargo(
            &[
                "test",
                "--quiet",
                "-p",
                "refunds",
                "--test",
                "it",
                "model_schema::",
            ],
            &[("UPDATE_SCHEMA", "1")],
        ),
        ["soak", options @ ..] => soak(options),
        ["diff", options @ ..] => spec_diff(options),
        // The benchmarks link the facade; they run in `cargo bench`, whose results are read back
        // from criterion's files, so the xtask itself still does not link it.
        ["bench", options @ ..] => bench::run(options),
        // One benchmark at REV and from the working tree, in alternating rounds.
        ["ab", options @ ..] => ab::run(options),
        _ => bail!("{USAGE}"),
    }
}

/// Runs the soak in this process (built with the `soak` feature) and exits 1 when an invariant
/// fails: the retry soak's ledger contradicts a settlement, or the settle soak finds a refund not
/// settled as the sandbox's ledger says.
#[cfg(feature = "soak")]
fn soak(args: &[&str]) -> Result<ExitCode> {
    use xtask::soak::{Command, HELP, run, settle};
    let command = Command::parse(args)?;
    if command == Command::Help {
        print!("{HELP}");
        return Ok(ExitCode::SUCCESS);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let checked = match command {
        Command::Retry(options) => {
            let report = runtime.block_on(run(&options))?;
            print!("{report}");
            report.check()
        }
        Command::Settle(options) => {
            let report = runtime.block_on(settle::run(&options))?;
            print!("{report}");
            report.check()
        }
        Command::Help => Ok(()),
    };
    match checked {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(err) => {
            eprintln!("error: {err:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The soak links the facade and the sandbox, and the plain xtask must not (it has to build
/// when the generated code is broken): run it from a build with the `soak` feature.
#[cfg(not(feature = "soak"))]
fn soak(args: &[&str]) -> Result<ExitCode> {
    let mut command = vec![
        "run",
        "--quiet",
        "--package",
        "xtask",
        "--features",
        "soak",
        "--",
        "soak",
    ];
    command.extend_from_slice(args);
    cargo(&command, &[])
}

/// `cargo xtask diff [REV] [--accept-breaking]`.
fn spec_diff(args: &[&str]) -> Result<ExitCode> {
    let accept = args.contains(&"--accept-breaking");
    let revs: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| !a.starts_with("--"))
        .collect();
    let rev = match revs.as_slice() {
        [] => "HEAD",
        [rev] => rev,
        _ => bail!("{USAGE}"),
    };
    let root = workspace_root()?;
    let report = xtask::specdiff::Report::build(&root, rev)?;
    print!("{report}");
    let (errors, breaking) = (report.errors(), report.breaking());
    if errors > 0 {
        // Not acknowledged by --accept-breaking: the spec cannot be generated as it is.
        eprintln!(
            "error: {errors} error(s) stop a spec from being generated (listed above under \
             their provider); fix them in specs/<provider>/overlay.json"
        );
        return Ok(ExitCode::FAILURE);
    }
    if breaking > 0 && !accept {
        eprintln!(
            "error: {breaking} breaking change(s) for callers; review them, then re-run with \
             --accept-breaking to acknowledge"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn cargo(args: &[&str], env: &[(&str, &str)]) -> Result<ExitCode> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = std::process::Command::new(cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(workspace_root()?)
        .status()
        .context("running cargo")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn generate_all(check: bool) -> Result<ExitCode> {
    let mode = if check { Mode::Check } else { Mode::Write };
    let root = workspace_root()?;
    let mut stale = Vec::new();
    let mut failed = Vec::new();
    for report in write_or_check(&root, mode)? {
        match report {
            ProviderReport::Generated {
                generated,
                states,
                diffs,
            } => {
                for diff in diffs {
                    eprint!("{diff}");
                }
                for (path, state) in states {
                    println!(
                        "{:<9} {} operations, {} schemas -> {} ({state})",
                        generated.provider.name,
                        generated.operations,
                        generated.schemas,
                        path.display()
                    );
                    if state == "STALE" {
                        stale.push(path.display().to_string());
                    }
                }
            }
            ProviderReport::Failed { provider, error } => {
                eprintln!("error: {}: {error}", provider.name);
                failed.push(provider.name);
            }
        }
    }
    if !failed.is_empty() {
        eprintln!(
            "error: {} provider(s) could not be generated: {}",
            failed.len(),
            failed.join(", ")
        );
        return Ok(ExitCode::FAILURE);
    }
    if stale.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: {} generated file(s) in {} differ from what specs/ produce: {}\n\
             run `cargo xtask generate` and review the diff",
            stale.len(),
            root.display(),
            stale.join(", ")
        );
        Ok(ExitCode::FAILURE)
    }
}
