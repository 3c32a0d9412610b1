//! An oversized answer keeps memory bounded: a provider (here the sandbox) that answers a
//! refund with a 200 MB body, or a 1 MiB header, costs the facade its answer caps, not the
//! answer's size. Each provider runs with its own default caps, as in production: 512 KiB of
//! body (`AnswerLimits::DEFAULT`), Moyasar 4 MiB (`MoyasarConfig::DEFAULT_ANSWER_LIMITS`, for
//! its whole-order answers).
//!
//! How the measurement works: Linux keeps, per process, the peak resident set size reached so
//! far (`VmHWM`, "high water mark", in kB, in `/proc/self/status`). It only ever grows, so
//! reading it before anything starts and again at the end gives an upper bound on the extra
//! memory the whole run ever held at once, however briefly: had the facade buffered a 200 MB
//! body even for an instant, the mark would have moved by about that much. The sandbox streams
//! the body in 64 KiB chunks from a static buffer, so the server side adds only its own small
//! working set. (The kernel syncs these counters in batches, so readings move by a few tens of
//! kB of noise: nothing next to the 32 MiB bound or the 200 MB it guards against.)
//!
//! Why it sits in its own test binary: the mark belongs to the whole process. Any other test
//! in the same binary, running in parallel or before this one, would raise it (or already
//! have raised it past what this test adds), and cargo runs each integration-test file as one
//! process. So this file holds exactly one test, and builds its tokio runtime itself, after the
//! first reading.

use std::time::Duration;

use refunds::{AnswerLimits, ErrorKind, Provider, RefundError, RefundRequest, Refunds};
use sandbox::{Fault, Match, Sandbox, SandboxConfig};
use test_support::{ClientSettings, handle, seed};

/// The oversized body the sandbox streams: 200 MB.
const BODY_BYTES: usize = 200 * 1024 * 1024;

/// The oversized header: 1 MiB, beyond what hyper accepts in a response head.
const HEADER_BYTES: usize = 1024 * 1024;

/// How much the peak RSS may grow over the whole test, in kB: the runtime, the sandbox and the
/// clients (about 16 MB), Moyasar's 1.1 MB order rendered by the in-process sandbox and read by
/// the client (about 4 MB), and a capped answer at a time (at most Moyasar's 4 MiB, which a body
/// of unknown length holds as up to 6 MiB while its buffer doubles): about 26 MB measured, far
/// below one oversized body.
const MAX_GROWTH_KB: u64 = 32 * 1024;

const TIMEOUT: Duration = Duration::from_secs(60);

/// A refund of 10.00 on a seeded order.
fn request(provider: Provider, order_id: &str, reference: &str) -> RefundRequest {
    test_support::request(provider, order_id, "10.00", reference)
}

/// A client for every provider, each with its own default answer limits.
fn client(sb: &Sandbox) -> Refunds {
    let settings = ClientSettings::default().with_timeout(TIMEOUT);
    test_support::builder(&test_support::base_urls(sb), &settings)
        .build()
        .expect("a client of every provider")
}

async fn refund_err(refunds: &Refunds, request: &RefundRequest) -> RefundError {
    match refunds.refund(request).await {
        Ok(refund) => panic!(
            "{}: an oversized answer is no refund: {refund:?}",
            request.provider
        ),
        Err(err) => err,
    }
}

#[test]
fn oversized_answers_keep_memory_bounded() {
    let before = test_support::peak_rss_kb();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let sb = Sandbox::start(SandboxConfig::default())
            .await
            .expect("starting the sandbox");
        let refunds = client(&sb);

        // A large answer within its cap: Moyasar's whole order with 3,000 earlier refunds
        // (about 1.1 MB) is read and mapped, at the cost of about its size.
        test_support::seed_amount(&sb, Provider::Moyasar, "ORD-LARGE", "3010.00");
        sb.moyasar()
            .record_refunds("ORD-LARGE", 3_000, 100)
            .expect("3,000 earlier refunds");
        let large = request(Provider::Moyasar, "ORD-LARGE", "RF-LARGE-1");
        let refund = refunds
            .refund(&large)
            .await
            .expect("an answer within the cap is read");
        assert!(refund.raw.as_bytes().len() > AnswerLimits::DEFAULT.max_body_bytes);
        eprintln!(
            "moyasar: {} byte order read; VmHWM {} kB",
            refund.raw.as_bytes().len(),
            test_support::peak_rss_kb()
        );
        drop(refund);

        for provider in Provider::ALL {
            let cap = provider.default_answer_limits().max_body_bytes;
            seed(&sb, provider, "ORD-BIG-BODY");
            handle(&sb, provider).inject(Fault::OversizedBody(BODY_BYTES), Match::Any.once());
            let request = request(provider, "ORD-BIG-BODY", "RF-BIG-BODY-1");
            let err = refund_err(&refunds, &request).await;
            assert_eq!(err.kind(), &ErrorKind::Protocol, "{provider}: {err}");
            assert!(err.outcome_unknown(), "{provider}: {err}");
            assert_eq!(err.http_status(), Some(200), "{provider}: {err}");
            let message = err.provider_message().unwrap_or_default();
            assert!(
                message.contains(&cap.to_string()),
                "{provider}: the message names the {cap}-byte cap: {err}"
            );
            // The sandbox recorded the refund before answering: the outcome really is unknown.
            let order = handle(&sb, provider)
                .order("ORD-BIG-BODY")
                .expect("the seeded order");
            assert_eq!(
                order.refunds.len(),
                1,
                "{provider}: the refund was recorded"
            );
            eprintln!(
                "{provider}: 200 MB body refused ({err}); VmHWM {} kB",
                test_support::peak_rss_kb()
            );
        }

        for provider in Provider::ALL {
            seed(&sb, provider, "ORD-BIG-HEAD");
            handle(&sb, provider).inject(Fault::OversizedHeaders(HEADER_BYTES), Match::Any.once());
            let request = request(provider, "ORD-BIG-HEAD", "RF-BIG-HEAD-1");
            let err = refund_err(&refunds, &request).await;
            assert_eq!(err.kind(), &ErrorKind::Protocol, "{provider}: {err}");
            assert!(err.outcome_unknown(), "{provider}: {err}");
            // The sandbox recorded the refund before answering: the outcome really is unknown.
            let order = handle(&sb, provider)
                .order("ORD-BIG-HEAD")
                .expect("the seeded order");
            assert_eq!(
                order.refunds.len(),
                1,
                "{provider}: the refund was recorded"
            );
            eprintln!(
                "{provider}: 1 MiB header refused ({err}); VmHWM {} kB",
                test_support::peak_rss_kb()
            );
        }

        sb.shutdown().await;
    });
    drop(runtime);

    test_support::assert_peak_growth_below(before, MAX_GROWTH_KB);
}
