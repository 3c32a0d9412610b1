//! `cargo xtask ab <REV> <BENCH> [FILTER] [--rounds N]`: one benchmark target, built at `REV`
//! and from the working tree, run in alternating rounds, and each benchmark's median per round
//! side by side, with the means and their ratio.
//!
//! Two runs of a benchmark a minute apart differ by the machine's load as much as a small
//! change does; alternating the two builds round after round (which goes first alternates too)
//! spreads that load over both, so a change can be told from the noise, or not. This is how the
//! README's A/B figures are measured.
//!
//! - `BENCH` is a benchmark target of the workspace: `codec`, `throughput`, `growth` (package
//!   `refunds`) or `journal` (`refunds-journal`; its PostgreSQL rows need
//!   `REFUNDS_JOURNAL_PG_URL`, as for `cargo xtask bench`).
//! - `FILTER` is criterion's (a regular expression over benchmark ids; default: all of them).
//! - `REV` is built in a git worktree under `target/ab/`, with the workspace's target
//!   directory, so only what differs is compiled again; the two executables are copied to
//!   `target/ab/` and each round writes to a criterion directory of its own there, so the main
//!   `target/criterion` (what `cargo xtask bench --report-only` reads) is left alone.
//!
//! Each figure is criterion's median per iteration: nanoseconds for a time, the ratio itself
//! for the paired benchmarks (facade time over direct time, journal time over floor time).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::bench::{Results, load_average};

const USAGE: &str = "usage: cargo xtask ab <REV> <BENCH> [FILTER] [--rounds N] \
                     (BENCH: codec, throughput, growth, journal)";

/// The benchmark targets, their packages and the packages' directories (a benchmark runs from
/// its package's directory, as `cargo bench` runs it).
const BENCHES: [(&str, &str, &str); 4] = [
    ("codec", "refunds", "facade"),
    ("throughput", "refunds", "facade"),
    ("growth", "refunds", "facade"),
    ("journal", "refunds-journal", "journal"),
];

/// Rounds unless `--rounds` says otherwise.
const DEFAULT_ROUNDS: usize = 3;

/// What to compare.
#[derive(Debug, PartialEq)]
struct Plan<'a> {
    rev: &'a str,
    bench: &'a str,
    package: &'a str,
    /// The package's directory in the workspace.
    package_dir: &'a str,
    filter: Option<&'a str>,
    rounds: usize,
}

impl<'a> Plan<'a> {
    fn parse(args: &[&'a str]) -> Result<Plan<'a>> {
        let mut positional = Vec::new();
        let mut rounds = DEFAULT_ROUNDS;
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match *arg {
                "--rounds" => {
                    let value = args.next().context(USAGE)?;
                    rounds = value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .with_context(|| format!("--rounds {value}: a whole number above 0"))?;
                }
                flag if flag.starts_with("--") => bail!("{flag}: unknown option; {USAGE}"),
                value => positional.push(value),
            }
        }
        let (rev, bench, filter) = match positional.as_slice() {
            [rev, bench] => (*rev, *bench, None),
            [rev, bench, filter] => (*rev, *bench, Some(*filter)),
            _ => bail!("{USAGE}"),
        };
        let (package, package_dir) = BENCHES
            .iter()
            .find(|(name, ..)| *name == bench)
            .map(|(_, package, dir)| (*package, *dir))
            .with_context(|| format!("{bench}: not a benchmark target; {USAGE}"))?;
        Ok(Plan {
            rev,
            bench,
            package,
            package_dir,
            filter,
            rounds,
        })
    }
}

/// `cargo xtask ab ...`.
pub fn run(args: &[&str]) -> Result<ExitCode> {
    let plan = Plan::parse(args)?;
    let root = xtask::workspace_root()?;
    let target = root.join("target");
    let dir = target.join("ab");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let base_commit = git(&root, &["rev-parse", "--short", plan.rev])?;
    let head_commit = git(&root, &["rev-parse", "--short", "HEAD"])?;
    let dirty = !git(&root, &["status", "--porcelain", "--untracked-files=no"])?.is_empty();

    let head = dir.join(format!("head-{}", plan.bench));
    copy_executable(&build(&root, &target, &plan)?, &head)?;
    // The base's sources stay until the last round: a benchmark reads files (the documented
    // answers) from the tree it was built in.
    let worktree = Worktree::add(&root, &dir.join("worktree"), plan.rev)?;
    let base = dir.join(format!("base-{}", plan.bench));
    copy_executable(&build(&worktree.path, &target, &plan)?, &base)?;

    let (base_dir, head_dir) = (
        worktree.path.join(plan.package_dir),
        root.join(plan.package_dir),
    );
    let mut medians: BTreeMap<String, Side> = BTreeMap::new();
    let mut loads = Vec::new();
    for round in 0..plan.rounds {
        let order = if round % 2 == 0 {
            [("base", &base, &base_dir), ("head", &head, &head_dir)]
        } else {
            [("head", &head, &head_dir), ("base", &base, &base_dir)]
        };
        for (side, executable, package_dir) in order {
            let criterion = dir.join(format!("criterion-{side}-{round}"));
            let _ = std::fs::remove_dir_all(&criterion);
            loads.push(format!(
                "round {} {side}: {}",
                round + 1,
                load_average().unwrap_or_else(|| "unknown".to_owned())
            ));
            run_bench(executable, package_dir, &criterion, plan.filter)?;
            for (id, median) in medians_in(&criterion)? {
                let entry = medians.entry(id).or_default();
                match side {
                    "base" => entry.base.push(median),
                    _ => entry.head.push(median),
                }
            }
        }
    }
    println!(
        "{}",
        report(
            &plan,
            &base_commit,
            &format!(
                "{head_commit}{}",
                if dirty {
                    " with uncommitted changes"
                } else {
                    ""
                }
            ),
            &medians,
            &loads
        )
    );
    Ok(ExitCode::SUCCESS)
}

/// A git worktree of `REV`, removed when dropped (a run that fails midway included).
struct Worktree {
    root: PathBuf,
    path: PathBuf,
}

impl Worktree {
    fn add(root: &Path, path: &Path, rev: &str) -> Result<Worktree> {
        // One left by an interrupted run.
        let _ = git(root, &["worktree", "remove", "--force", path_str(path)?]);
        git(root, &["worktree", "add", "--detach", path_str(path)?, rev])?;
        Ok(Worktree {
            root: root.to_path_buf(),
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Worktree {
    fn drop(&mut self) {
        if let Ok(path) = path_str(&self.path) {
            let _ = git(&self.root, &["worktree", "remove", "--force", path]);
        }
    }
}

/// One benchmark's medians, one per round, on each side.
#[derive(Debug, Default)]
struct Side {
    base: Vec<f64>,
    head: Vec<f64>,
}

/// The table of every benchmark's medians.
fn report(
    plan: &Plan<'_>,
    base: &str,
    head: &str,
    medians: &BTreeMap<String, Side>,
    loads: &[String],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ab: {} {}, base {base}, head {head}, {} rounds alternating (base first in odd rounds)",
        plan.bench,
        plan.filter.unwrap_or("(all)"),
        plan.rounds
    );
    let _ = writeln!(
        out,
        "criterion's median per iteration, each round (ns for times; the ratio for paired \
         benchmarks), then the mean"
    );
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let list = |values: &[f64]| {
        values
            .iter()
            .map(|v| figure(*v))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (id, side) in medians {
        let (base_mean, head_mean) = (mean(&side.base), mean(&side.head));
        let _ = writeln!(out, "{id}");
        let _ = writeln!(
            out,
            "  base {} | mean {}",
            list(&side.base),
            figure(base_mean)
        );
        let _ = writeln!(
            out,
            "  head {} | mean {} | head/base {:.3} | {}",
            list(&side.head),
            figure(head_mean),
            head_mean / base_mean,
            apart(side)
        );
    }
    let _ = writeln!(out, "load average (1, 5, 15 min) before each run:");
    for load in loads {
        let _ = writeln!(out, "  {load}");
    }
    out
}

/// Whether the two sides' rounds are told apart: every round of one side below every round of
/// the other, or not (a mean that moved within the rounds' spread is noise until more rounds
/// say otherwise). Apart is necessary, not sufficient: two builds of the same code differ by a
/// few per cent in layout alone, which an A/A run (`REV` = `HEAD`, a clean tree) shows.
fn apart(side: &Side) -> &'static str {
    let low = |values: &[f64]| values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = |values: &[f64]| values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if high(&side.head) < low(&side.base) {
        "every head round below every base round"
    } else if low(&side.head) > high(&side.base) {
        "every head round above every base round"
    } else {
        "the rounds overlap"
    }
}

/// A median as criterion's raw number: four significant digits.
fn figure(value: f64) -> String {
    let digits = if value == 0.0 {
        0
    } else {
        (3 - value.abs().log10().floor() as i32).max(0)
    };
    format!("{value:.*}", usize::try_from(digits).unwrap_or(0))
}

/// Every benchmark's median under criterion directory `criterion`, by its id (the path of its
/// directory, `throughput_seq/optty/facade`).
fn medians_in(criterion: &Path) -> Result<BTreeMap<String, f64>> {
    let results = Results::new(criterion.to_path_buf());
    let mut found = BTreeMap::new();
    let mut dirs = vec![criterion.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if path.file_name().is_some_and(|name| name == "new") {
                let id = dir
                    .strip_prefix(criterion)
                    .context("a criterion directory outside its home")?
                    .to_string_lossy()
                    .into_owned();
                if let Some(median) = results.median(&id) {
                    found.insert(id, median.point);
                }
            } else if path.file_name().is_some_and(|name| name != "report") {
                dirs.push(path);
            }
        }
    }
    Ok(found)
}

/// Builds `plan`'s benchmark in the workspace at `workspace`, into `target`; its executable.
fn build(workspace: &Path, target: &Path, plan: &Plan<'_>) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "bench",
            "-p",
            plan.package,
            "--bench",
            plan.bench,
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(workspace)
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo bench --no-run")?;
    ensure!(
        output.status.success(),
        "building {} in {} failed",
        plan.bench,
        workspace.display()
    );
    executable(&String::from_utf8_lossy(&output.stdout), plan.bench)
        .with_context(|| format!("cargo built no {} benchmark", plan.bench))
}

/// The executable of benchmark target `bench` in cargo's JSON messages.
fn executable(messages: &str, bench: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact"
                && message["target"]["name"] == bench
                && message["target"]["kind"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|kind| kind == "bench"))
        })
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
}

fn copy_executable(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .map(|_| ())
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))
}

/// Runs one benchmark executable as `cargo bench` does (from its package's directory), writing
/// to `criterion`.
fn run_bench(
    executable: &Path,
    package_dir: &Path,
    criterion: &Path,
    filter: Option<&str>,
) -> Result<()> {
    let mut command = Command::new(executable);
    command
        .arg("--bench")
        .env("CRITERION_HOME", criterion)
        .current_dir(package_dir)
        .stdout(Stdio::null());
    if let Some(filter) = filter {
        command.arg(filter);
    }
    let status = command
        .status()
        .with_context(|| format!("running {}", executable.display()))?;
    ensure!(
        status.success(),
        "{} failed: {status}",
        executable.display()
    );
    Ok(())
}

fn git(root: &Path, args: &[&str]) -> Result<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(root)
        .output()
        .context("running git")?;
    ensure!(
        output.status.success(),
        "git {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_name_a_revision_a_benchmark_an_optional_filter_and_rounds() {
        assert_eq!(
            Plan::parse(&["HEAD~1", "throughput", "paired_seq/optty"]).unwrap(),
            Plan {
                rev: "HEAD~1",
                bench: "throughput",
                package: "refunds",
                package_dir: "facade",
                filter: Some("paired_seq/optty"),
                rounds: DEFAULT_ROUNDS,
            }
        );
        let journal = Plan::parse(&["main", "--rounds", "5", "journal"]).unwrap();
        assert_eq!(
            (
                journal.package,
                journal.package_dir,
                journal.filter,
                journal.rounds
            ),
            ("refunds-journal", "journal", None, 5)
        );
        for wrong in [
            &["main"][..],
            &["main", "nonesuch"],
            &["main", "codec", "--rounds", "0"],
            &["main", "codec", "--rounds"],
            &["main", "codec", "--fast"],
            &["main", "codec", "a", "b"],
        ] {
            assert!(Plan::parse(wrong).is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn the_executable_is_the_bench_targets_artifact() {
        let messages = [
            r#"{"reason":"compiler-artifact","target":{"name":"throughput","kind":["lib"]},"executable":null}"#,
            r#"{"reason":"compiler-artifact","target":{"name":"codec","kind":["bench"]},"executable":"/t/codec-1"}"#,
            r#"{"reason":"compiler-artifact","target":{"name":"throughput","kind":["bench"]},"executable":"/t/throughput-2"}"#,
            r#"{"reason":"build-finished","success":true}"#,
        ]
        .join("\n");
        assert_eq!(
            executable(&messages, "throughput"),
            Some(PathBuf::from("/t/throughput-2"))
        );
        assert_eq!(executable(&messages, "journal"), None);
    }

    #[test]
    fn medians_are_found_at_every_depth_and_reported_side_by_side() {
        let dir = std::env::temp_dir().join(format!("xtask-ab-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let write = |id: &str, point: f64| {
            let new = dir.join(id).join("new");
            std::fs::create_dir_all(&new).unwrap();
            let estimates = serde_json::json!({"median": {"point_estimate": point,
                "confidence_interval": {"lower_bound": point, "upper_bound": point}}});
            std::fs::write(new.join("estimates.json"), estimates.to_string()).unwrap();
        };
        write("paired_seq/optty", 1.0869);
        write("throughput_seq/optty/facade", 135_400.0);
        std::fs::create_dir_all(dir.join("report")).unwrap();
        let found = medians_in(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            found,
            BTreeMap::from([
                ("paired_seq/optty".to_owned(), 1.0869),
                ("throughput_seq/optty/facade".to_owned(), 135_400.0),
            ])
        );

        let plan = Plan::parse(&["main", "throughput", "optty"]).unwrap();
        let medians = BTreeMap::from([(
            "paired_seq/optty".to_owned(),
            Side {
                base: vec![1.08, 1.10],
                head: vec![1.05, 1.07],
            },
        )]);
        let table = report(
            &plan,
            "abc1234",
            "def5678",
            &medians,
            &["round 1 base: 0.50".into()],
        );
        assert!(
            table.contains("base abc1234, head def5678, 3 rounds"),
            "{table}"
        );
        assert!(
            table.contains("  base 1.080 1.100 | mean 1.090\n"),
            "{table}"
        );
        assert!(
            table.contains(
                "  head 1.050 1.070 | mean 1.060 | head/base 0.972 | every head round below every \
                 base round\n"
            ),
            "{table}"
        );
        assert!(table.contains("  round 1 base: 0.50\n"), "{table}");
        let overlapping = Side {
            base: vec![1.0, 1.2],
            head: vec![1.1, 1.3],
        };
        assert_eq!(apart(&overlapping), "the rounds overlap");
        let above = Side {
            base: vec![1.0, 1.1],
            head: vec![1.2, 1.15],
        };
        assert_eq!(apart(&above), "every head round above every base round");
        assert_eq!(figure(135_400.0), "135400");
        assert_eq!(figure(0.0123456), "0.01235");
    }
}
