//! A short fault soak of the retry executor, the same `xtask::soak::run` as `cargo xtask soak`
//! (which runs 10000 refunds): about 500 refunds under seeded faults, and the ledger must agree
//! with every settlement.

use refunds::Provider;
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
        assert_eq!(stats.refunds, options.refunds / 4, "{provider}\n{report}");
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
