//! Short versions of `cargo xtask soak`'s two modes: the fault soak of the retry executor (the
//! same `xtask::soak::run` as `cargo xtask soak`, which runs 10000 refunds): about 500 refunds
//! under seeded faults, and the ledger must agree with every settlement; and the settle soak
//! through the journal (`xtask::soak::settle::run`, `cargo xtask soak --mode settle`).

use std::time::Duration;

use refunds::Provider;
use xtask::soak::settle::{self, Backend, SettleOptions, SettleReport, Stop};
use xtask::soak::{SoakOptions, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_finds_every_refund_settled_once_and_known() {
    let options = SoakOptions {
        refunds: 500,
        seed: 20_240_501,
        concurrency: 32,
    };
    let report = run(&options).await.expect("the soak runs");
    println!("{report}");
    if let Err(err) = report.check() {
        panic!("{err:#}\n\n{report}");
    }

    // The run exercised the faults, not only the happy path.
    for (provider, stats) in &report.providers {
        assert_eq!(
            stats.refunds,
            options.refunds / Provider::ALL.len(),
            "{provider}\n{report}"
        );
        assert!(stats.faulted > 0, "{provider}: no fault injected\n{report}");
        assert!(
            stats.attempts > stats.refunds as u64,
            "{provider}: no retries\n{report}"
        );
    }
    // AfterPay has no duplicate key: an unknown outcome there is never re-sent, so it stays
    // unresolved (and some of those were applied behind the failure).
    let afterpay = report.stats(Provider::AfterPay);
    assert!(afterpay.unresolved > 0, "{report}");
    assert!(afterpay.unresolved_applied > 0, "{report}");
    // Where the provider deduplicates, retries settle most faulted refunds as applied.
    for provider in [Provider::Optty, Provider::Moyasar, Provider::OpenApp] {
        let stats = report.stats(provider);
        assert!(
            stats.applied > stats.refunds * 3 / 4,
            "{provider}: too few settled as applied\n{report}"
        );
    }
}

/// A short settle soak, the same `xtask::soak::settle::run` as `cargo xtask soak --mode settle`
/// (which runs 2000 refunds): about 200 refunds through the journal on SQLite under crashes,
/// faults and a read delay, then reconcile rounds until everything is settled as the sandbox's
/// ledger says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_settle_soak_ends_every_refund_settled_once_and_verified() {
    short_settle_soak(short()).await;
}

/// The same on PostgreSQL (`--database postgres`): crashing senders are other journals on the
/// same database, their connections dropped mid-call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_settle_soak_on_postgres_ends_every_refund_settled_once_and_verified() {
    short_settle_soak(SettleOptions {
        backend: Backend::Postgres,
        ..short()
    })
    .await;
}

/// The same through the reconciler's rounds (`--reconciler`: [`Journal::reconcile_round`], 8
/// entries at once, a provider whose entry failed left alone for a while), as a service runs
/// them.
///
/// [`Journal::reconcile_round`]: refunds_journal::Journal::reconcile_round
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_settle_soak_through_the_reconciler_ends_every_refund_settled_once_and_verified() {
    short_settle_soak(SettleOptions {
        reconciler: true,
        ..short()
    })
    .await;
}

/// The same on PostgreSQL with the database cut (every connection, as a server restart does)
/// every 250 ms while the refunds are sent and reconciled, down 50 ms each time (connections
/// refused): the calls and rounds it fails are not errors, and every refund still ends settled
/// once, as the ledger says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_settle_soak_with_database_cuts_ends_every_refund_settled_once_and_verified() {
    let report = short_settle_soak(SettleOptions {
        backend: Backend::Postgres,
        database_cuts: Some(Duration::from_millis(250)),
        database_down: Duration::from_millis(50),
        ..short()
    })
    .await;
    assert!(report.database_cuts > 0, "{report}");
    assert!(
        report.totals().failed_by_cuts > 0,
        "no journal call met a cut\n{report}"
    );
}

/// The short settle soak's options: 200 refunds, on SQLite.
fn short() -> SettleOptions {
    SettleOptions {
        refunds: 200,
        seed: 20_240_516,
        settling_delay: Duration::from_millis(1_000),
        ..SettleOptions::default()
    }
}

async fn short_settle_soak(options: SettleOptions) -> SettleReport {
    let report = settle::run(&options).await.expect("the settle soak runs");
    println!("{report}");
    if let Err(err) = report.check() {
        panic!("{err:#}\n\n{report}");
    }
    assert_eq!(report.stopped, Stop::Settled, "{report}");

    let totals = report.totals();
    for (provider, stats) in &report.providers {
        assert_eq!(
            stats.attempted,
            options.refunds / Provider::ALL.len(),
            "{provider}\n{report}"
        );
        assert!(
            stats.unresolved_after_call > 0,
            "{provider}: reconciliation had nothing to do\n{report}"
        );
        assert!(stats.crashed > 0, "{provider}: no sender crashed\n{report}");
    }
    // Unknown outcomes were settled by reading the providers' records (AfterPay by
    // attribution), pending ones read to their final status or, OpenApp, reported.
    assert!(
        report.stats(Provider::AfterPay).settled_by_reading > 0,
        "{report}"
    );
    assert!(totals.settled_by_reading > report.stats(Provider::AfterPay).settled_by_reading);
    assert!(report.stats(Provider::Optty).status_read > 0, "{report}");
    let openapp = report.stats(Provider::OpenApp);
    if report.options.database_cuts.is_none() {
        assert_eq!(
            openapp.reported, openapp.applied,
            "every OpenApp refund settled from the settlement report\n{report}"
        );
    } else {
        // A status recorded just before a cut may be answered as failed, and is then not
        // counted; none is left pending (the checks say so).
        assert!(
            openapp.reported > 0 && openapp.reported <= openapp.applied,
            "{report}"
        );
    }
    assert!(totals.failed > 0, "no refund settled failed\n{report}");
    assert!(totals.resent > 0, "{report}");
    assert!(totals.not_applied > 0, "{report}");
    report
}

/// The settle soak's checks catch what they are for: with a settling delay shorter than the
/// providers' read lag (which `cargo xtask soak` refuses), the journal takes an AfterPay refund
/// that does not show yet for one never made and sends it again, and the soak reports the
/// duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settling_delay_within_the_read_lag_shows_as_duplicates() {
    let options = SettleOptions {
        refunds: 40,
        seed: 3,
        read_delay: Duration::from_secs(30),
        settling_delay: Duration::from_millis(50),
        max_rounds: 3,
        ..SettleOptions::default()
    };
    assert!(
        xtask::soak::settle::SettleOptions::parse(&[
            "--read-delay-ms",
            "6000",
            "--settling-ms",
            "50"
        ])
        .is_err()
    );
    let report = settle::run(&options).await.expect("the settle soak runs");
    println!("{report}");
    assert!(report.stats(Provider::AfterPay).duplicates > 0, "{report}");
    let err = report.check().expect_err("duplicates fail the check");
    assert!(err.to_string().contains("afterpay: duplicates"), "{err:#}");
    // The journal kept for a look at a failure: not wanted here.
    let kept = report.kept_journal.expect("kept when a check fails");
    kept.remove().await.expect("the kept journal removed");
}
