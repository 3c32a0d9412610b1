//! The replay memory is bounded by bytes, not only by a count of results: 1,400 refunds on one
//! Moyasar order, whose every answer is the whole order (so the answers grow with each refund,
//! to about half a MiB), keep the process's peak memory growth under 64 MB with the default
//! [`ReplayMemory`](refunds::ReplayMemory). Under a count limit alone, the last 1,024 answers
//! stayed remembered: about 350 MB.
//!
//! How the measurement works, and why this file is a test binary of its own with exactly one
//! test: see `tests/answer_memory.rs` (the peak resident set size, `VmHWM` in
//! `/proc/self/status`, belongs to the whole process and only ever grows).

use std::time::Duration;

use refunds::{Provider, Refunds};
use test_support::{ClientSettings, client_for, handle, money, request, seed_amount};

const PROVIDER: Provider = Provider::Moyasar;

/// Refunds on the one order.
const REFUNDS: usize = 1_400;

/// How much the peak RSS may grow over the whole test, in kB: the runtime, the sandbox and its
/// ledger, the client, the answers in flight and the memory's default budget (4 MiB), with room
/// to spare; far below the 350 MB the remembered answers held before.
const MAX_GROWTH_KB: u64 = 64 * 1024;

const TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn many_refunds_on_one_large_order_keep_the_replay_memory_bounded() {
    let before = test_support::peak_rss_kb();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let sb = test_support::start_sandbox().await;
        // Default settings: the default replay memory, the default answer limits.
        let refunds: Refunds = client_for(
            &sb,
            PROVIDER,
            &ClientSettings::default().with_timeout(TIMEOUT),
        );
        let order_id = "ORD-LARGE";
        seed_amount(&sb, PROVIDER, order_id, "100000.00");

        let mut largest = 0;
        let mut refused = 0;
        let mut first_refused = None;
        for n in 0..REFUNDS {
            let req = request(PROVIDER, order_id, "1.00", &format!("RF-LARGE-{n}"));
            match refunds.refund(&req).await {
                Ok(refund) => largest = largest.max(refund.raw.as_bytes().len()),
                Err(err) => {
                    // Past the answer cap the answer is not read: outcome unknown, which
                    // Moyasar's duplicate key makes safe to re-send; nothing of it is
                    // remembered.
                    assert!(err.outcome_unknown(), "refund {n}: {err}");
                    refused += 1;
                    first_refused.get_or_insert(n);
                }
            }
        }
        let order = handle(&sb, PROVIDER).order(order_id).expect("the order");
        assert_eq!(
            order.refunds.len(),
            REFUNDS,
            "every refund reached the order"
        );
        eprintln!(
            "{REFUNDS} refunds; largest answer read {largest} bytes; {refused} answers past the \
             cap (from refund {first_refused:?}); VmHWM {} kB",
            test_support::peak_rss_kb()
        );
        assert!(
            largest > 256 * 1024,
            "the answers grew large ({largest} bytes): the test measures what it means to"
        );
        // The results within the count (the last 1,024) are still remembered: an older one
        // for its facts (its raw body dropped to stay within the bytes), the newest with its
        // body. Both repeats are answered without I/O.
        let sent = handle(&sb, PROVIDER).requests_received();
        let replay = |n: usize| {
            let refunds = refunds.clone();
            async move {
                refunds
                    .refund(&request(
                        PROVIDER,
                        order_id,
                        "1.00",
                        &format!("RF-LARGE-{n}"),
                    ))
                    .await
                    .unwrap_or_else(|e| panic!("refund {n}'s remembered result: {e}"))
            }
        };
        let older = replay(REFUNDS - 1_000).await;
        assert_eq!(older.amount, money(PROVIDER, "1.00"));
        assert!(older.provider_refund_id.is_some(), "{older:?}");
        assert!(older.raw.as_bytes().is_empty(), "its raw body was dropped");
        let newest = replay(REFUNDS - 1).await;
        assert_eq!(
            newest.raw.as_bytes().len(),
            largest,
            "the newest keeps its body"
        );
        assert_eq!(handle(&sb, PROVIDER).requests_received(), sent, "replayed");
        drop(refunds);
        sb.shutdown().await;
    });
    drop(runtime);

    test_support::assert_peak_growth_below(before, MAX_GROWTH_KB);
}
