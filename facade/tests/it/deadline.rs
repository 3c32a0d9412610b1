//! The total deadline of a call ([`refunds::RefundsBuilder::deadline`]): a provider that hangs
//! holds the caller no longer than the deadline, and the attempt it cut short still settles a
//! repeat of the request.

use std::time::{Duration, Instant};

use refunds::{ErrorKind, Outcome, Provider, Refunds, RetryPolicy, Settlement};
use sandbox::{Fault, Match};
use test_support::{ClientSettings, base_urls, builder, handle, request, seed, start_sandbox};

const DEADLINE: Duration = Duration::from_millis(300);
const LATENCY: Duration = Duration::from_secs(3);

fn client_with_deadline(sb: &sandbox::Sandbox) -> Refunds {
    builder(&base_urls(sb), &ClientSettings::default())
        .deadline(DEADLINE)
        .build()
        .expect("a client")
}

#[tokio::test]
async fn a_call_ends_at_its_deadline_and_its_attempt_settles_a_repeat() {
    let sb = start_sandbox().await;
    let moyasar = handle(&sb, Provider::Moyasar);
    seed(&sb, Provider::Moyasar, "ORD-DEADLINE");
    moyasar.inject(Fault::Latency(LATENCY), Match::Any.once());
    let client = client_with_deadline(&sb);
    let req = request(Provider::Moyasar, "ORD-DEADLINE", "10.00", "DEADLINE-1");

    let started = Instant::now();
    let error = client
        .refund(&req)
        .await
        .expect_err("the provider answers after the deadline");
    assert!(
        started.elapsed() < LATENCY,
        "the caller waited {:?}, past the deadline",
        started.elapsed()
    );
    assert_eq!(*error.kind(), ErrorKind::Timeout, "{error}");
    assert_eq!(
        error.outcome(),
        Outcome::Unknown,
        "the request is on the wire"
    );
    assert!(
        error.is_retryable(),
        "Moyasar deduplicates: a repeat is safe"
    );

    // The attempt runs on: a repeat joins it (and may reach its own deadline) until its answer
    // is in, then gets that answer, with no second request.
    let mut refund = None;
    for _ in 0..40 {
        match client.refund(&req).await {
            Ok(done) => {
                refund = Some(done);
                break;
            }
            Err(error) if *error.kind() == ErrorKind::Timeout => continue,
            Err(error) => panic!("a repeat ended otherwise: {error}"),
        }
    }
    let refund = refund.expect("the first attempt's answer settles the repeat");
    assert_eq!(refund.amount, req.amount);
    assert_eq!(
        moyasar.requests_received(),
        1,
        "one request reached Moyasar"
    );
    assert_eq!(moyasar.refund_count(), 1);
}

#[tokio::test]
async fn retries_stop_at_the_deadline() {
    let sb = start_sandbox().await;
    let moyasar = handle(&sb, Provider::Moyasar);
    seed(&sb, Provider::Moyasar, "ORD-DEADLINE-RETRY");
    moyasar.inject(Fault::Latency(LATENCY), Match::Any);
    let client = client_with_deadline(&sb);
    let req = request(
        Provider::Moyasar,
        "ORD-DEADLINE-RETRY",
        "10.00",
        "DEADLINE-2",
    );

    let started = Instant::now();
    let settlement = client
        .refund_with_retries(&req, &RetryPolicy::default())
        .await;
    assert!(
        started.elapsed() < LATENCY,
        "the caller waited {:?}, past the deadline",
        started.elapsed()
    );
    match settlement {
        Settlement::Unresolved { error, attempts } => {
            assert_eq!(*error.kind(), ErrorKind::Timeout, "{error}");
            assert_eq!(attempts, 1, "no retry starts past the deadline");
        }
        other => panic!("expected an unresolved settlement, got {other:?}"),
    }
}

#[test]
fn the_deadline_is_read_from_the_environment() {
    let settings = std::collections::HashMap::from([
        ("REFUNDS_MOYASAR_BASE_URL", "http://127.0.0.1:9"),
        ("REFUNDS_MOYASAR_SECRET_KEY", "sk_test_1"),
        ("REFUNDS_CALL_DEADLINE_MS", "1500"),
    ]);
    let client = Refunds::from_lookup(&|name| settings.get(name).map(|v| (*v).to_owned()))
        .expect("a client");
    assert_eq!(client.deadline(), Duration::from_millis(1500));
    let defaults = std::collections::HashMap::from([
        ("REFUNDS_MOYASAR_BASE_URL", "http://127.0.0.1:9"),
        ("REFUNDS_MOYASAR_SECRET_KEY", "sk_test_1"),
    ]);
    let client = Refunds::from_lookup(&|name| defaults.get(name).map(|v| (*v).to_owned()))
        .expect("a client");
    assert_eq!(client.deadline(), refunds::client::DEFAULT_DEADLINE);
    let broken = std::collections::HashMap::from([
        ("REFUNDS_MOYASAR_BASE_URL", "http://127.0.0.1:9"),
        ("REFUNDS_MOYASAR_SECRET_KEY", "sk_test_1"),
        ("REFUNDS_CALL_DEADLINE_MS", "soon"),
    ]);
    let error = Refunds::from_lookup(&|name| broken.get(name).map(|v| (*v).to_owned()))
        .expect_err("not a number");
    assert!(
        error.to_string().contains("REFUNDS_CALL_DEADLINE_MS"),
        "{error}"
    );
}
