//! An oversized answer keeps memory bounded: a provider (here the sandbox) that answers a
//! refund with a 200 MB body, or a 1 MiB header, costs the facade its answer caps, not the
//! answer's size.
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

use std::str::FromStr;
use std::time::Duration;

use refunds::{
    AfterPayConfig, ErrorKind, LineItem, MerchantReference, Money, MoyasarConfig, OpenAppConfig,
    OpttyConfig, Provider, RefundError, RefundRequest, Refunds,
};
use rust_decimal::Decimal;
use sandbox::credentials::{
    AFTERPAY_API_KEY, MOYASAR_SECRET_KEY, OPENAPP_API_KEY, OPENAPP_API_SECRET, OPTTY_CLIENT_ID,
    OPTTY_CLIENT_SECRET,
};
use sandbox::{
    DEFAULT_CAPTURE_NUMBER, Fault, Match, OrderSeed, ProviderHandle, Sandbox, SandboxConfig,
};

/// The oversized body the sandbox streams: 200 MB.
const BODY_BYTES: usize = 200 * 1024 * 1024;

/// The oversized header: 1 MiB, beyond what hyper accepts in a response head.
const HEADER_BYTES: usize = 1024 * 1024;

/// How much the peak RSS may grow over the whole test, in kB: the runtime, the sandbox, the
/// clients and a capped answer at a time, with room to spare, far below one oversized body.
const MAX_GROWTH_KB: u64 = 32 * 1024;

const TIMEOUT: Duration = Duration::from_secs(60);

/// The process's peak resident set size so far (`VmHWM`), in kB.
fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("reading /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

fn currency(provider: Provider) -> &'static str {
    match provider {
        Provider::Optty => "AUD",
        Provider::AfterPay => "EUR",
        Provider::Moyasar => "SAR",
        Provider::OpenApp => "PLN",
        _ => unreachable!("every provider of this workspace is matched above"),
    }
}

/// Seeds an order of 100.00 (OpenApp: with its own id `OA-<order_id>`).
fn seed(sb: &Sandbox, provider: Provider, order_id: &str) {
    let seed = OrderSeed::new(
        order_id,
        currency(provider),
        Decimal::from_str("100.00").unwrap(),
    );
    let seed = match provider {
        Provider::OpenApp => seed.oa_order_id(format!("OA-{order_id}")),
        _ => seed,
    };
    handle(sb, provider).seed_order(seed);
}

fn handle(sb: &Sandbox, provider: Provider) -> &ProviderHandle {
    sb.handle(provider.as_str())
        .unwrap_or_else(|| panic!("the sandbox has no {provider} server"))
}

/// A refund of 10.00 on a seeded order.
fn request(provider: Provider, order_id: &str, reference: &str) -> RefundRequest {
    let amount = Money::parse("10.00", currency(provider)).unwrap();
    let request = RefundRequest::new(
        provider,
        order_id,
        amount,
        MerchantReference::new(reference).unwrap(),
    );
    match provider {
        Provider::AfterPay => request
            .with_capture_number(DEFAULT_CAPTURE_NUMBER)
            .with_line_items(vec![LineItem {
                product_id: "SKU-1".to_owned(),
                description: "Returned goods".to_owned(),
                quantity: 1,
                unit_price: amount,
                unit_vat: Money::zero(amount.currency()),
                vat_percent: Decimal::ZERO,
            }]),
        Provider::OpenApp => request.with_provider_order_id(format!("OA-{order_id}")),
        Provider::Optty | Provider::Moyasar => request,
        _ => unreachable!("every provider of this workspace is matched above"),
    }
}

/// A client for all four providers with the default answer limits.
fn client(sb: &Sandbox) -> Refunds {
    Refunds::builder()
        .optty(
            OpttyConfig::new(
                sb.optty.base_url(),
                sb.optty.base_url(),
                OPTTY_CLIENT_ID,
                OPTTY_CLIENT_SECRET,
            )
            .with_timeout(TIMEOUT),
        )
        .afterpay(
            AfterPayConfig::new(sb.afterpay.base_url(), AFTERPAY_API_KEY).with_timeout(TIMEOUT),
        )
        .moyasar(
            MoyasarConfig::new(sb.moyasar.base_url(), MOYASAR_SECRET_KEY).with_timeout(TIMEOUT),
        )
        .openapp(
            OpenAppConfig::new(sb.openapp.base_url(), OPENAPP_API_KEY, OPENAPP_API_SECRET)
                .with_timeout(TIMEOUT),
        )
        .build()
        .expect("building the client")
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
    let before = peak_rss_kb();
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
        let cap = refunds::AnswerLimits::default().max_body_bytes;

        for provider in Provider::ALL {
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
                peak_rss_kb()
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
                peak_rss_kb()
            );
        }

        sb.shutdown().await;
    });
    drop(runtime);

    let after = peak_rss_kb();
    let growth = after.saturating_sub(before);
    eprintln!("VmHWM before {before} kB, after {after} kB, growth {growth} kB");
    assert!(
        growth < MAX_GROWTH_KB,
        "peak RSS grew by {growth} kB (from {before} to {after}), more than {MAX_GROWTH_KB} kB"
    );
}
