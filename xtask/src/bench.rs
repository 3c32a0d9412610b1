//! `cargo xtask bench`: runs the facade's criterion benchmarks (`cargo bench -p refunds`, see
//! `facade/benches/`), then reads criterion's `new/estimates.json` of each and prints one table:
//!
//! - per provider: encode + decode of one refund (pure), and refunds/s on the loopback sandbox
//!   through the facade and through the generated client directly, sequential and with 32
//!   concurrent tasks, with the facade/direct throughput ratio measured paired (both clients
//!   taking turns within each sample, so load from elsewhere on the machine cancels out) and,
//!   for comparison, the ratio of the two separate runs;
//! - growth: one Moyasar refund on an order with K earlier refunds (the answer is the whole
//!   order), through the facade and directly, the facade's extra time per refund (paired),
//!   beside the cost of decoding that answer alone and of the facade's mapping of it (their
//!   difference paired too);
//! - the refund journal (`cargo bench -p refunds-journal`, see `journal/benches/journal.rs`):
//!   refunds/s sequential and with 32 callers through the facade alone, a floor (the facade's
//!   refund between two minimal durable write transactions) and the journal, on SQLite and,
//!   when `REFUNDS_JOURNAL_PG_URL` is set, on PostgreSQL; journal/floor sequential (paired, and
//!   from the separate runs) and 32 callers/sequential per path;
//! - the machine's load average before and after, and each target met, the distance to it, or
//!   "not measured" when its figures are missing (never "met" without them).
//!
//! Every figure is criterion's median (with its 95% confidence interval where it decides a
//! target). The plain xtask must build when the generated code does not, so it never links the
//! facade or the journal: the benchmarks run in `cargo bench` and only their result files are
//! read here. `--report-only` prints the table of the last run without benchmarking.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// Earlier refunds on the order in the growth benchmarks.
const EARLIER: [u64; 3] = [0, 100, 1000];

/// Target: encode + decode of one refund, in nanoseconds.
const CODEC_TARGET_NS: f64 = 5_000.0;

/// Target: facade throughput over direct throughput (issue 17: at least 0.95 for every provider,
/// sequential and with 32 tasks; the README's table says the same).
const RATIO_TARGET: f64 = 0.95;

/// Journal target: journal/floor throughput, sequential, on SQLite (paired).
const JOURNAL_FLOOR_TARGET: f64 = 1.0;

/// Journal targets: throughput with 32 callers over sequential throughput, per backend.
const JOURNAL_C32_TARGETS: [(&str, &str, f64); 2] =
    [("sqlite", "SQLite", 4.0), ("postgres", "PostgreSQL", 3.0)];

/// The journal benchmark's paths, in the table's order.
const JOURNAL_PATHS: [&str; 5] = [
    "facade",
    "floor_sqlite",
    "journal_sqlite",
    "floor_postgres",
    "journal_postgres",
];

/// The variable that gives the journal benchmark its PostgreSQL database.
const PG_URL: &str = "REFUNDS_JOURNAL_PG_URL";

/// Growth target: between the fewest and the most earlier refunds, the facade's extra cost
/// over the direct call (which reads the same answer) may grow by at most this share of the
/// direct call's cost at the most (loopback noise); the same for the facade's mapping of the
/// answer over decoding it.
const GROWTH_TOLERANCE: f64 = 0.05;

/// `cargo xtask bench [--report-only]`.
pub fn run(args: &[&str]) -> Result<ExitCode> {
    let report_only = match args {
        [] => false,
        ["--report-only"] => true,
        _ => bail!("usage: cargo xtask bench [--report-only]"),
    };
    let root = xtask::workspace_root()?;
    // The table's rows: criterion's ids are the providers' names (`codec/<provider>`).
    let providers: Vec<&str> = xtask::providers(&root)?.iter().map(|p| p.name).collect();
    let criterion = criterion_home(&root);
    let started = SystemTime::now();
    let load_before = load_average();
    let pg_set = std::env::var_os(PG_URL).is_some_and(|url| !url.is_empty());
    let mut failed = Vec::new();
    if !report_only {
        let home = criterion
            .to_str()
            .context("the target directory's path is not UTF-8")?;
        let status = crate::cargo(
            &[
                "bench",
                "-p",
                "refunds",
                "--bench",
                "codec",
                "--bench",
                "throughput",
                "--bench",
                "growth",
            ],
            &[("CRITERION_HOME", home)],
        )?;
        if status != ExitCode::SUCCESS {
            failed.push("cargo bench -p refunds");
        }
        if !pg_set {
            eprintln!(
                "cargo xtask bench: {PG_URL} is not set: the journal's PostgreSQL rows are not \
                 measured (eval \"$(scripts/pg-throwaway start)\", without PG_THROWAWAY_FAST)"
            );
        }
        let status = crate::cargo(
            &["bench", "-p", "refunds-journal", "--bench", "journal"],
            &[("CRITERION_HOME", home)],
        )?;
        if status != ExitCode::SUCCESS {
            failed.push("cargo bench -p refunds-journal");
        }
    }
    let load_after = load_average();
    let results = Results {
        dir: criterion,
        since: (!report_only).then_some(started),
    };
    // Why PostgreSQL figures can be missing: known for a run, not for a report of an earlier one.
    let postgres = if report_only || pg_set {
        None
    } else {
        Some(format!("{PG_URL} was not set"))
    };
    let loads = if report_only {
        format!(
            "load average (1, 5, 15 min) now {} (not measured with these results)",
            load_before.as_deref().unwrap_or("unknown")
        )
    } else {
        format!(
            "load average (1, 5, 15 min) before {}, after {}",
            load_before.as_deref().unwrap_or("unknown"),
            load_after.as_deref().unwrap_or("unknown")
        )
    };
    print!(
        "{}",
        table(&results, &providers, &loads, postgres.as_deref())
    );
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("cargo xtask bench: {} failed", failed.join(" and "));
        Ok(ExitCode::FAILURE)
    }
}

/// Where criterion writes: `$CARGO_TARGET_DIR/criterion`, else `target/criterion`.
fn criterion_home(root: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| root.join("target"), |dir| root.join(dir));
    target.join("criterion")
}

/// `/proc/loadavg`'s three load averages, where there is one.
pub(crate) fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The estimates of one run.
pub(crate) struct Results {
    dir: PathBuf,
    /// Only results written since then count (`None`: any).
    since: Option<SystemTime>,
}

/// A median with its 95% confidence interval, per iteration (ns for times).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Median {
    pub(crate) point: f64,
    low: f64,
    high: f64,
}

impl Results {
    /// The estimates under criterion directory `dir`, whenever written.
    pub(crate) fn new(dir: PathBuf) -> Results {
        Results { dir, since: None }
    }

    /// The median per iteration of benchmark `id` (criterion's directory path).
    pub(crate) fn median(&self, id: &str) -> Option<Median> {
        let path = self.dir.join(id).join("new").join("estimates.json");
        if let Some(since) = self.since {
            let written = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
            if written < since {
                return None;
            }
        }
        let estimates: Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
        let median = &estimates["median"];
        Some(Median {
            point: median["point_estimate"].as_f64()?,
            low: median["confidence_interval"]["lower_bound"].as_f64()?,
            high: median["confidence_interval"]["upper_bound"].as_f64()?,
        })
    }

    fn median_ns(&self, id: &str) -> Option<f64> {
        self.median(id).map(|m| m.point)
    }

    /// The refunds per second of benchmark `id`, one refund per iteration.
    fn per_second(&self, id: &str) -> Option<f64> {
        self.median_ns(id).map(|ns| 1e9 / ns)
    }

    /// The bytes one iteration of benchmark `id` processed, as given to criterion.
    fn bytes(&self, id: &str) -> Option<u64> {
        let path = self.dir.join(id).join("new").join("benchmark.json");
        let benchmark: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        benchmark["throughput"]["Bytes"].as_u64()
    }
}

/// `123 ns`, `1.23 µs`, `456 µs`, `2.44 ms`; a sign when `signed`.
fn duration(ns: Option<f64>) -> String {
    let Some(ns) = ns else {
        return "-".to_owned();
    };
    let sign = if ns < 0.0 { "-" } else { "" };
    let abs = ns.abs();
    let text = if abs < 1_000.0 {
        format!("{abs:.0} ns")
    } else if abs < 10_000.0 {
        format!("{:.2} µs", abs / 1e3)
    } else if abs < 1_000_000.0 {
        format!("{:.0} µs", abs / 1e3)
    } else {
        format!("{:.2} ms", abs / 1e6)
    };
    format!("{sign}{text}")
}

/// A difference, always signed.
fn signed(ns: Option<f64>) -> String {
    match ns {
        Some(ns) if ns >= 0.0 => format!("+{}", duration(Some(ns))),
        other => duration(other),
    }
}

/// Refunds per second from the time of one.
fn per_second(ns: Option<f64>) -> String {
    ns.map_or_else(|| "-".to_owned(), |ns| format!("{:.0}", 1e9 / ns))
}

fn two_decimals(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
}

fn size(bytes: Option<u64>) -> String {
    match bytes {
        None => "-".to_owned(),
        Some(b) if b < 1024 => format!("{b} B"),
        Some(b) => format!("{:.1} KiB", b as f64 / 1024.0),
    }
}

/// A target's line: met, not met (with the distance), or not measured (its figures missing:
/// never "met" without them).
enum Verdict {
    Met(String),
    NotMet(String),
    NotMeasured(String),
}

impl Verdict {
    /// `target: met`, `target: NOT met: ...`, `target: not measured (...)`.
    fn line(&self, target: &str) -> String {
        match self {
            Verdict::Met(detail) if detail.is_empty() => format!("{target}: met"),
            Verdict::Met(detail) => format!("{target}: met: {detail}"),
            Verdict::NotMet(detail) => format!("{target}: NOT met: {detail}"),
            Verdict::NotMeasured(detail) if detail.is_empty() => {
                format!("{target}: not measured")
            }
            Verdict::NotMeasured(detail) => format!("{target}: not measured ({detail})"),
        }
    }

    /// The verdict on several figures: not met when a measured one misses, else not measured
    /// when one is missing (`missing`, named), else met.
    fn of(misses: &[String], missing: &[String]) -> Verdict {
        match (misses.is_empty(), missing.is_empty()) {
            (false, true) => Verdict::NotMet(misses.join(", ")),
            (false, false) => Verdict::NotMet(format!(
                "{}; not measured: {}",
                misses.join(", "),
                missing.join(", ")
            )),
            (true, false) => Verdict::NotMeasured(format!("no figures for {}", missing.join(", "))),
            (true, true) => Verdict::Met(String::new()),
        }
    }
}

/// The whole report, one row per provider (in `providers`' order), then the journal's rows.
/// `postgres`: why the journal's PostgreSQL figures are missing, where known.
fn table(results: &Results, providers: &[&str], loads: &str, postgres: Option<&str>) -> String {
    let mut out = String::new();
    let mut verdicts: Vec<String> = Vec::new();
    let mut missing = 0;
    let mut seen = |value: Option<f64>| {
        if value.is_none() {
            missing += 1;
        }
        value
    };
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let _ = writeln!(
        out,
        "\nrefunds benchmarks: criterion medians from {}",
        results.dir.display()
    );
    let _ = writeln!(out, "machine: {cpus} CPUs; {loads}");

    // Per provider.
    let _ = writeln!(
        out,
        "\n{:<9} {:>13} | {:<35} | {:<35}",
        "",
        "encode+decode",
        "sequential: refunds/s, facade/direct",
        "32 tasks: refunds/s, facade/direct"
    );
    let _ = writeln!(
        out,
        "{:<9} {:>13} | {:>8} {:>8} {:>7} {:>9} | {:>8} {:>8} {:>7} {:>9}",
        "provider",
        "(pure)",
        "facade",
        "direct",
        "paired",
        "separate",
        "facade",
        "direct",
        "paired",
        "separate"
    );
    let mut codec_misses = Vec::new();
    let mut codec_missing = Vec::new();
    let mut ratio_misses = Vec::new();
    let mut ratio_missing = Vec::new();
    for provider in providers {
        let codec = seen(results.median_ns(&format!("codec/{provider}")));
        if codec.is_none() {
            codec_missing.push((*provider).to_owned());
        }
        let mut row = format!("{provider:<9} {:>13}", duration(codec));
        if let Some(ns) = codec.filter(|ns| *ns > CODEC_TARGET_NS) {
            codec_misses.push(format!(
                "{provider} {} ({} over)",
                duration(Some(ns)),
                duration(Some(ns - CODEC_TARGET_NS))
            ));
        }
        for (mode, label) in [("seq", "sequential"), ("c32", "32 tasks")] {
            let facade = seen(results.median_ns(&format!("throughput_{mode}/{provider}/facade")));
            let direct = seen(results.median_ns(&format!("throughput_{mode}/{provider}/direct")));
            // The paired benchmark measures facade time / direct time; throughput is the inverse.
            let paired = results.median(&format!("paired_{mode}/{provider}"));
            seen(paired.map(|m| m.point));
            if paired.is_none() {
                ratio_missing.push(format!("{provider} {label}"));
            }
            let ratio = paired.map(|m| 1.0 / m.point);
            let separate = facade.zip(direct).map(|(f, d)| d / f);
            let _ = write!(
                row,
                " | {:>8} {:>8} {:>7} {:>9}",
                per_second(facade),
                per_second(direct),
                two_decimals(ratio),
                two_decimals(separate)
            );
            if let Some(paired) = paired.filter(|m| 1.0 / m.point < RATIO_TARGET) {
                ratio_misses.push(format!(
                    "{provider} {label} {:.2} (95% CI {:.2}-{:.2}; {:.2} short)",
                    1.0 / paired.point,
                    1.0 / paired.high,
                    1.0 / paired.low,
                    RATIO_TARGET - 1.0 / paired.point
                ));
            }
        }
        let _ = writeln!(out, "{row}");
    }
    let signed_answer = seen(results.median_ns("codec/openapp_signed"));
    let _ = writeln!(
        out,
        "{:<9} {:>13}   (OpenApp with the answer's signature verified, the facade's default)",
        "openapp+",
        duration(signed_answer)
    );
    let _ = writeln!(
        out,
        "  paired: facade/direct throughput with both clients taking turns within each sample (the\n  \
         target's figure); separate: the same ratio from the two separate runs beside it"
    );
    verdicts.push(Verdict::of(&codec_misses, &codec_missing).line(&format!(
        "encode + decode <= {}",
        duration(Some(CODEC_TARGET_NS))
    )));
    verdicts.push(match Verdict::of(&ratio_misses, &ratio_missing) {
        Verdict::NotMet(_) => format!(
            "facade/direct >= {RATIO_TARGET} (paired): NOT met:\n    {}{}",
            ratio_misses.join("\n    "),
            if ratio_missing.is_empty() {
                String::new()
            } else {
                format!("\n    not measured: {}", ratio_missing.join(", "))
            }
        ),
        verdict => verdict.line(&format!("facade/direct >= {RATIO_TARGET} (paired)")),
    });

    // Growth.
    let _ = writeln!(
        out,
        "\ngrowth: one Moyasar refund on an order with K earlier refunds (the answer is the whole order)"
    );
    let _ = writeln!(
        out,
        "{:>5} {:>10} | {:>9} {:>9} {:>13} | {:>9} {:>9} {:>14}",
        "K", "answer", "facade", "direct", "facade extra", "decode", "mapping", "mapping-decode"
    );
    let mut rows = Vec::new();
    for k in EARLIER {
        let facade = seen(results.median_ns(&format!("growth/facade/{k}")));
        let direct = seen(results.median_ns(&format!("growth/direct/{k}")));
        let extra = results.median(&format!("growth_extra/{k}"));
        seen(extra.map(|m| m.point));
        let decode = seen(results.median_ns(&format!("growth_answer/decode/{k}")));
        let mapping = seen(results.median_ns(&format!("growth_answer/mapping/{k}")));
        let answer_extra = results.median(&format!("growth_answer_extra/{k}"));
        seen(answer_extra.map(|m| m.point));
        let bytes = results.bytes(&format!("growth_answer/decode/{k}"));
        let _ = writeln!(
            out,
            "{k:>5} {:>10} | {:>9} {:>9} {:>13} | {:>9} {:>9} {:>14}",
            size(bytes),
            duration(facade),
            duration(direct),
            signed(extra.map(|m| m.point)),
            duration(decode),
            duration(mapping),
            signed(answer_extra.map(|m| m.point))
        );
        rows.push((k, direct, extra, decode, answer_extra));
    }
    let _ = writeln!(
        out,
        "  facade, direct: the refund over loopback HTTP (K to K + K/5 earlier refunds), separate runs;\n  \
         facade extra: facade time - direct time per refund, paired; decode: the answer into the\n  \
         generated Order alone; mapping: the facade's refund_result on the same answer (decoding\n  \
         included); mapping-decode: their difference, paired"
    );
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        let (k0, k1) = (first.0, last.0);
        let http = first.2.zip(last.2).map(|(a, b)| (b.point - a.point, b, a));
        let pure = first.4.zip(last.4).map(|(a, b)| b.point - a.point);
        match (http, pure, last.1, last.3) {
            (Some((growth, at_last, at_first)), Some(pure), Some(direct), Some(decode)) => {
                let met = growth <= GROWTH_TOLERANCE * direct && pure <= GROWTH_TOLERANCE * decode;
                verdicts.push(format!(
                    "the facade adds nothing that grows beyond reading the answer (K {k0} -> {k1}, \
                     tolerance {:.0}%): {}\n    \
                     facade extra {} -> {} (95% CI {}..{} -> {}..{}): {} ({:+.1}% of the direct refund at K {k1})\n    \
                     mapping - decode (paired): {} ({:+.1}% of decoding the answer at K {k1})",
                    100.0 * GROWTH_TOLERANCE,
                    if met { "met" } else { "NOT met" },
                    signed(Some(at_first.point)),
                    signed(Some(at_last.point)),
                    signed(Some(at_first.low)),
                    signed(Some(at_first.high)),
                    signed(Some(at_last.low)),
                    signed(Some(at_last.high)),
                    signed(Some(growth)),
                    100.0 * growth / direct,
                    signed(Some(pure)),
                    100.0 * pure / decode,
                ));
            }
            _ => verdicts.push("growth: not measured".to_owned()),
        }
    }

    journal_section(&mut out, &mut verdicts, &mut seen, results, postgres);

    let _ = writeln!(out, "\ntargets:");
    for verdict in verdicts {
        let _ = writeln!(out, "  {verdict}");
    }
    if missing > 0 {
        let _ = writeln!(
            out,
            "  ({missing} figure(s) missing: not written by this run; see cargo bench's output)"
        );
    }
    out
}

/// The journal's rows (refunds/s per path, sequential and with 32 callers, journal/floor and
/// 32 callers/sequential) and its targets.
fn journal_section(
    out: &mut String,
    verdicts: &mut Vec<String>,
    seen: &mut impl FnMut(Option<f64>) -> Option<f64>,
    results: &Results,
    postgres: Option<&str>,
) {
    let _ = writeln!(
        out,
        "\njournal: refunds/s on the loopback sandbox (AfterPay), one refund after the other and \
         from 32 callers at once"
    );
    let _ = writeln!(
        out,
        "{:<17} {:>10} {:>10} {:>8}",
        "path", "sequential", "32 callers", "c32/seq"
    );
    let mut c32_over_seq = std::collections::BTreeMap::new();
    for path in JOURNAL_PATHS {
        let seq = seen(results.per_second(&format!("journal_seq/{path}")));
        let c32 = seen(results.per_second(&format!("journal_c32/{path}")));
        let ratio = seq.zip(c32).map(|(seq, c32)| c32 / seq);
        c32_over_seq.insert(path, ratio);
        let note = match postgres {
            Some(why) if path.ends_with("_postgres") && seq.is_none() && c32.is_none() => {
                format!("  (not measured: {why})")
            }
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{path:<17} {:>10} {:>10} {:>8}{note}",
            seq.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}")),
            c32.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}")),
            ratio.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}x")),
        );
    }
    let _ = writeln!(out, "journal/floor, sequential (throughput):");
    let mut floor_ratio = None;
    for (backend, _, _) in JOURNAL_C32_TARGETS {
        let floor = results.per_second(&format!("journal_seq/floor_{backend}"));
        let journal = results.per_second(&format!("journal_seq/journal_{backend}"));
        let separate = floor.zip(journal).map(|(floor, journal)| journal / floor);
        // Journal time over floor time, paired: the throughput ratio is its inverse.
        let paired = results.median(&format!("journal_paired_seq/{backend}"));
        seen(paired.map(|m| m.point));
        let _ = writeln!(
            out,
            "  {backend:<9} paired {}, separate runs {}",
            paired.map_or_else(|| "-".to_owned(), |m| throughput_ratio(m, "")),
            two_decimals(separate),
        );
        if backend == "sqlite" {
            floor_ratio = paired;
        }
    }
    let _ = writeln!(
        out,
        "  floor: the facade's refund between two minimal durable write transactions (a row and an\n  \
         event before, the row updated and an event after; WAL, synchronous=FULL on SQLite);\n  \
         paired: journal and floor taking turns within each sample (the target's figure)"
    );

    let target =
        format!("journal >= floor, SQLite sequential (paired, >= {JOURNAL_FLOOR_TARGET:.2})");
    verdicts.push(
        at_least(
            floor_ratio,
            JOURNAL_FLOOR_TARGET,
            "journal/floor ",
            "",
            String::new(),
        )
        .line(&target),
    );
    let _ = writeln!(out, "32 callers/sequential (throughput):");
    for (backend, name, goal) in JOURNAL_C32_TARGETS {
        // The 32 callers' time per refund over the sequential time per refund, paired: the
        // throughput ratio is its inverse.
        let paired = results.median(&format!("journal_paired_c32/{backend}"));
        seen(paired.map(|m| m.point));
        let separate = c32_over_seq
            .get(format!("journal_{backend}").as_str())
            .copied()
            .flatten();
        let _ = writeln!(
            out,
            "  {backend:<9} paired {}, separate runs {}",
            paired.map_or_else(|| "-".to_owned(), |m| throughput_ratio(m, "x")),
            separate.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}x")),
        );
        let target = format!("journal {name}: 32 callers >= {goal:.0}x sequential (paired)");
        let not_measured = match postgres {
            Some(why) if backend == "postgres" => why.to_owned(),
            _ => String::new(),
        };
        verdicts.push(at_least(paired, goal, "", "x", not_measured).line(&target));
    }
    let _ = writeln!(
        out,
        "  paired: the journal's sequential refunds and its 32 callers' taking turns within each\n  \
         sample (the target's figure); separate runs: the table's c32/seq"
    );
}

/// A paired time ratio (one path's time over the other's, per refund) as the throughput ratio
/// it is the inverse of, with its 95% CI; `unit` after each figure.
fn throughput_ratio(paired: Median, unit: &str) -> String {
    format!(
        "{:.2}{unit} (95% CI {:.2}-{:.2}{unit})",
        1.0 / paired.point,
        1.0 / paired.high,
        1.0 / paired.low
    )
}

/// Whether the throughput ratio of `paired` (a paired time ratio) is at least `goal`; the
/// detail starts with `label`, figures end with `unit`.
fn at_least(
    paired: Option<Median>,
    goal: f64,
    label: &str,
    unit: &str,
    not_measured: String,
) -> Verdict {
    let Some(paired) = paired else {
        return Verdict::NotMeasured(not_measured);
    };
    let ratio = 1.0 / paired.point;
    let detail = format!("{label}{}", throughput_ratio(paired, unit));
    if ratio >= goal {
        Verdict::Met(detail)
    } else {
        Verdict::NotMet(format!("{detail}; {:.2}{unit} short", goal - ratio))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A criterion directory of the test's own, removed at the end.
    struct Criterion(PathBuf);

    impl Criterion {
        fn new(name: &str) -> Criterion {
            let dir = std::env::temp_dir().join(format!(
                "xtask-bench-{name}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Criterion(dir)
        }

        /// Benchmark `id`'s median per iteration (a 2% confidence interval around it).
        fn median(&self, id: &str, point: f64) -> &Criterion {
            let dir = self.0.join(id).join("new");
            std::fs::create_dir_all(&dir).unwrap();
            let estimates = serde_json::json!({
                "median": {
                    "point_estimate": point,
                    "confidence_interval": {
                        "lower_bound": point * 0.99,
                        "upper_bound": point * 1.01,
                    },
                },
            });
            std::fs::write(dir.join("estimates.json"), estimates.to_string()).unwrap();
            self
        }

        fn table(&self, providers: &[&str], postgres: Option<&str>) -> String {
            let results = Results {
                dir: self.0.clone(),
                since: None,
            };
            table(&results, providers, "load average unknown", postgres)
        }
    }

    impl Drop for Criterion {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The line of the target that starts with `target`.
    fn target<'a>(table: &'a str, target: &str) -> &'a str {
        let targets = table.split("\ntargets:").nth(1).expect("a targets section");
        targets
            .lines()
            .map(str::trim)
            .find(|line| line.starts_with(target))
            .unwrap_or_else(|| panic!("no target {target:?} in:\n{table}"))
    }

    /// With no results at all, every target says "not measured", none "met".
    #[test]
    fn a_target_without_its_figures_is_not_measured_never_met() {
        let criterion = Criterion::new("empty");
        let table = criterion.table(&["afterpay", "moyasar"], None);
        for name in [
            "encode + decode",
            "facade/direct",
            "growth",
            "journal >= floor",
            "journal SQLite",
            "journal PostgreSQL",
        ] {
            let line = target(&table, name);
            assert!(line.contains("not measured"), "{line}");
            assert!(!line.contains(": met"), "{line}");
        }
    }

    /// Some figures of a target there, within it, others missing: still not measured, naming
    /// what is missing; a figure that misses the target makes it not met, whatever is missing.
    #[test]
    fn a_target_with_some_figures_missing_is_not_measured_unless_one_misses() {
        let criterion = Criterion::new("partial");
        criterion.median("codec/afterpay", 4_000.0);
        let table = criterion.table(&["afterpay", "moyasar"], None);
        let line = target(&table, "encode + decode");
        assert!(
            line.contains("not measured (no figures for moyasar)"),
            "{line}"
        );

        criterion.median("codec/moyasar", 6_000.0);
        criterion.median("paired_seq/afterpay", 1.0 / 0.9);
        let table = criterion.table(&["afterpay", "moyasar", "optty"], None);
        let line = target(&table, "encode + decode");
        assert!(line.contains("NOT met: moyasar 6.00 µs"), "{line}");
        assert!(line.contains("not measured: optty"), "{line}");
        let facade = table
            .split("\ntargets:")
            .nth(1)
            .unwrap()
            .split("facade/direct")
            .nth(1)
            .unwrap();
        assert!(facade.contains("NOT met"), "{facade}");
        assert!(facade.contains("afterpay sequential 0.90"), "{facade}");

        let criterion = Criterion::new("complete");
        for provider in ["afterpay", "moyasar"] {
            criterion.median(&format!("codec/{provider}"), 1_000.0);
        }
        let table = criterion.table(&["afterpay", "moyasar"], None);
        assert_eq!(
            target(&table, "encode + decode"),
            "encode + decode <= 5.00 µs: met"
        );
    }

    /// The journal's rows and targets come from its criterion ids: refunds/s per path, the
    /// 32-caller/sequential ratio per path, journal/floor from the paired benchmark (journal
    /// time over floor time), and the 32-caller targets from theirs (time per refund from 32
    /// callers over time per refund one after the other), not from the separate runs.
    #[test]
    fn the_journal_rows_and_targets_read_the_journal_benchmark() {
        let criterion = Criterion::new("journal");
        criterion
            .median("journal_seq/facade", 200_000.0)
            .median("journal_c32/facade", 100_000.0)
            .median("journal_seq/floor_sqlite", 1_600_000.0)
            .median("journal_seq/journal_sqlite", 2_000_000.0)
            .median("journal_c32/journal_sqlite", 400_000.0)
            .median("journal_paired_seq/sqlite", 1.25)
            .median("journal_seq/journal_postgres", 4_000_000.0)
            .median("journal_c32/journal_postgres", 2_000_000.0)
            .median("journal_paired_c32/sqlite", 0.2)
            .median("journal_paired_c32/postgres", 0.4);
        let table = criterion.table(&[], None);
        let row = table
            .lines()
            .find(|line| line.starts_with("journal_sqlite"))
            .unwrap();
        assert_eq!(
            row.split_whitespace().collect::<Vec<_>>(),
            ["journal_sqlite", "500", "2500", "5.00x"]
        );
        assert!(
            table.contains("sqlite    paired 0.80 (95% CI 0.79-0.81), separate runs 0.80"),
            "{table}"
        );
        assert!(
            target(&table, "journal >= floor").contains("NOT met: journal/floor 0.80"),
            "{table}"
        );
        assert!(
            table.contains("postgres  paired 2.50x (95% CI 2.48-2.53x), separate runs 2.00x"),
            "{table}"
        );
        assert_eq!(
            target(&table, "journal SQLite"),
            "journal SQLite: 32 callers >= 4x sequential (paired): met: 5.00x (95% CI 4.95-5.05x)"
        );
        assert_eq!(
            target(&table, "journal PostgreSQL"),
            "journal PostgreSQL: 32 callers >= 3x sequential (paired): NOT met: 2.50x \
             (95% CI 2.48-2.53x); 0.50x short"
        );

        criterion.median("journal_paired_seq/sqlite", 0.95);
        let table = criterion.table(&[], None);
        assert!(
            target(&table, "journal >= floor").contains(": met: journal/floor 1.05"),
            "{table}"
        );
    }

    /// A run without `REFUNDS_JOURNAL_PG_URL` says so where the PostgreSQL figures would be.
    #[test]
    fn postgres_figures_a_run_could_not_measure_say_why() {
        let criterion = Criterion::new("no-postgres");
        criterion
            .median("journal_seq/journal_sqlite", 2_000_000.0)
            .median("journal_c32/journal_sqlite", 400_000.0);
        let table = criterion.table(&[], Some("REFUNDS_JOURNAL_PG_URL was not set"));
        assert_eq!(
            target(&table, "journal PostgreSQL"),
            "journal PostgreSQL: 32 callers >= 3x sequential (paired): not measured \
             (REFUNDS_JOURNAL_PG_URL was not set)"
        );
        let row = table
            .lines()
            .find(|line| line.starts_with("journal_postgres"))
            .unwrap();
        assert!(
            row.ends_with("(not measured: REFUNDS_JOURNAL_PG_URL was not set)"),
            "{row}"
        );
    }
}
