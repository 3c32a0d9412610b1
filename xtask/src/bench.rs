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
//! - the machine's load average before and after, and each target met or the distance to it.
//!
//! Every figure is criterion's median (with its 95% confidence interval where it decides a
//! target). The plain xtask must build when the generated code does not, so it never links the
//! facade: the benchmarks run in `cargo bench` and only their result files are read here.
//! `--report-only` prints the table of the last run without benchmarking.

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

/// Target: facade throughput over direct throughput.
const RATIO_TARGET: f64 = 0.97;

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
            bail!("cargo bench -p refunds failed");
        }
    }
    let load_after = load_average();
    let results = Results {
        dir: criterion,
        since: (!report_only).then_some(started),
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
    print!("{}", table(&results, &providers, &loads));
    Ok(ExitCode::SUCCESS)
}

/// Where criterion writes: `$CARGO_TARGET_DIR/criterion`, else `target/criterion`.
fn criterion_home(root: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| root.join("target"), |dir| root.join(dir));
    target.join("criterion")
}

/// `/proc/loadavg`'s three load averages, where there is one.
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The estimates of one run.
struct Results {
    dir: PathBuf,
    /// Only results written since then count (`None`: any).
    since: Option<SystemTime>,
}

/// A median with its 95% confidence interval, per iteration (ns for times).
#[derive(Debug, Clone, Copy)]
struct Median {
    point: f64,
    low: f64,
    high: f64,
}

impl Results {
    /// The median per iteration of benchmark `id` (criterion's directory path).
    fn median(&self, id: &str) -> Option<Median> {
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

/// The whole report, one row per provider (in `providers`' order).
fn table(results: &Results, providers: &[&str], loads: &str) -> String {
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
    let mut ratio_misses = Vec::new();
    for provider in providers {
        let codec = seen(results.median_ns(&format!("codec/{provider}")));
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
    verdicts.push(if codec_misses.is_empty() {
        format!(
            "encode + decode <= {}: met",
            duration(Some(CODEC_TARGET_NS))
        )
    } else {
        format!(
            "encode + decode <= {}: NOT met: {}",
            duration(Some(CODEC_TARGET_NS)),
            codec_misses.join(", ")
        )
    });
    verdicts.push(if ratio_misses.is_empty() {
        format!("facade/direct >= {RATIO_TARGET} (paired): met")
    } else {
        format!(
            "facade/direct >= {RATIO_TARGET} (paired): NOT met:\n    {}",
            ratio_misses.join("\n    ")
        )
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
