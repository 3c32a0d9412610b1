//! The attempt of a flight belongs to no caller: the first caller (the leader) drives it in its
//! own future, and when that future is dropped mid-attempt (a deadline, a `select!`, an aborted
//! task) the attempt goes on by itself, so its result still reaches the callers that joined it
//! and the replay memory. Dropped where no runtime can finish it, its outcome is unknown for
//! everyone, and remembered so for AfterPay.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use refunds::{ErrorKind, Provider, Refund, RefundError, RefundRequest, Refunds};
use sandbox::{Fault, Match, ProviderHandle, Sandbox};
use test_support::{client, handle, request, seed, start_sandbox};

/// How long the sandbox holds the refund under test before answering: long enough for the
/// test to drop its leader and join a follower while it is on the wire.
const LATENCY: Duration = Duration::from_millis(400);

/// A bound on waiting for something that should happen, so a regression fails instead of
/// hanging (not a measure of speed).
const PATIENCE: Duration = Duration::from_secs(30);

/// A call's future, pinned so that it can be polled, set aside and dropped.
type Call<'a> = Pin<Box<dyn Future<Output = Result<Refund, RefundError>> + Send + 'a>>;

async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    tokio::time::timeout(PATIENCE, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("waited too long until {what}"));
}

/// One refund on another order first, so that the request under test is the refund itself
/// (Optty fetches its token with the first refund).
async fn warm_up(sb: &Sandbox, refunds: &Refunds, provider: Provider, tag: &str) {
    let order_id = format!("ORD-WARM-{tag}");
    seed(sb, provider, &order_id);
    refunds
        .refund(&request(
            provider,
            &order_id,
            "1.00",
            &format!("RF-WARM-{tag}"),
        ))
        .await
        .unwrap_or_else(|e| panic!("{provider}: warm-up refund: {e}"));
}

/// Starts `call`, polls it until the provider holds its request (delayed by [`LATENCY`]), and
/// returns it unfinished.
async fn on_the_wire<'a>(provider: &ProviderHandle, mut call: Call<'a>, what: &str) -> Call<'a> {
    let before = provider.requests_received();
    provider.inject(Fault::Latency(LATENCY), Match::Any.once());
    tokio::select! {
        result = &mut call => panic!("{what} answered before it was dropped: {result:?}"),
        () = wait_until("the request is on the wire", || provider.requests_received() == before + 1) => {}
    }
    call
}

/// Polls `call` exactly once: enough to validate it and join the flight in progress.
async fn joined<'a>(mut call: Call<'a>) -> Call<'a> {
    tokio::select! {
        biased;
        result = &mut call => panic!("a repeat of a request on the wire answered at once: {result:?}"),
        () = std::future::ready(()) => {}
    }
    call
}

fn refund_of(result: Result<Refund, RefundError>, provider: Provider, what: &str) -> Refund {
    result.unwrap_or_else(|e| panic!("{provider}: {what}: {e} ({e:?})"))
}

#[tokio::test]
async fn a_leader_dropped_mid_attempt_still_answers_its_followers_and_the_replay_memory() {
    let sb = start_sandbox().await;
    let refunds = client(&sb);
    for provider in Provider::ALL {
        let sandbox = handle(&sb, provider);
        warm_up(&sb, &refunds, provider, "FOLLOW").await;
        let order_id = "ORD-DROPPED-LEADER";
        seed(&sb, provider, order_id);
        let req = request(provider, order_id, "10.00", "RF-DROPPED-LEADER");
        let sent = sandbox.requests_received() + 1;

        let leader = on_the_wire(sandbox, Box::pin(refunds.refund(&req)), "the leader").await;
        let follower = joined(Box::pin(refunds.refund(&req))).await;
        // The leader stops waiting while its request is on the wire.
        drop(leader);

        let followed = tokio::time::timeout(PATIENCE, follower)
            .await
            .unwrap_or_else(|_| panic!("{provider}: the follower got no result"));
        let followed = refund_of(followed, provider, "the follower");
        assert_eq!(followed.amount, req.amount, "{provider}");
        assert_eq!(sandbox.requests_received(), sent, "{provider}: one request");
        let order = sandbox.order(order_id).expect("the seeded order");
        assert_eq!(order.refunds.len(), 1, "{provider}: one refund: {order:?}");

        // The result is remembered: a repeat gets it without I/O.
        let replayed = refund_of(refunds.refund(&req).await, provider, "the repeat");
        assert_eq!(replayed, followed, "{provider}");
        assert_eq!(
            sandbox.requests_received(),
            sent,
            "{provider}: nothing sent again"
        );
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn a_leader_dropped_mid_attempt_alone_still_settles_a_repeat() {
    let sb = start_sandbox().await;
    let refunds = client(&sb);
    for provider in Provider::ALL {
        let sandbox = handle(&sb, provider);
        warm_up(&sb, &refunds, provider, "ALONE").await;
        let order_id = "ORD-DROPPED-ALONE";
        seed(&sb, provider, order_id);
        let req = request(provider, order_id, "10.00", "RF-DROPPED-ALONE");
        let sent = sandbox.requests_received() + 1;

        let leader = on_the_wire(sandbox, Box::pin(refunds.refund(&req)), "the leader").await;
        drop(leader);
        // The provider applies it once its latency is over; the attempt reads the answer.
        wait_until("the provider applied the refund", || {
            sandbox
                .order(order_id)
                .is_some_and(|order| order.refunds.len() == 1)
        })
        .await;

        // Whether the attempt is still reading its answer (the repeat joins it) or done (the
        // repeat is replayed), the repeat gets its result: nothing is sent again, and, for
        // AfterPay, which has no duplicate key, nothing is refunded twice.
        let repeat = refund_of(refunds.refund(&req).await, provider, "the repeat");
        assert_eq!(repeat.amount, req.amount, "{provider}");
        assert_eq!(
            sandbox.requests_received(),
            sent,
            "{provider}: nothing sent again"
        );
        let order = sandbox.order(order_id).expect("the seeded order");
        assert_eq!(order.refunds.len(), 1, "{provider}: one refund: {order:?}");
    }
    sb.shutdown().await;
}

/// With no runtime to finish it on, the dropped attempt is lost: every caller is told its
/// outcome is unknown, and AfterPay's is remembered, so a repeat is not re-sent blindly.
#[test]
fn a_leader_dropped_outside_any_runtime_leaves_an_unknown_outcome_that_afterpay_remembers() {
    let provider = Provider::AfterPay;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let sb = runtime.block_on(start_sandbox());
    let refunds = client(&sb);
    let sandbox = handle(&sb, provider);
    runtime.block_on(warm_up(&sb, &refunds, provider, "NO-RUNTIME"));
    let order_id = "ORD-NO-RUNTIME";
    seed(&sb, provider, order_id);
    let req: RefundRequest = request(provider, order_id, "10.00", "RF-NO-RUNTIME");
    let sent = sandbox.requests_received() + 1;

    let leader = runtime.block_on(on_the_wire(
        sandbox,
        Box::pin(refunds.refund(&req)),
        "the leader",
    ));
    let follower = runtime.block_on(joined(Box::pin(refunds.refund(&req))));
    assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "the test drops the leader outside the runtime"
    );
    drop(leader);

    let followed = runtime
        .block_on(follower)
        .expect_err("the attempt could not finish");
    let repeat = runtime
        .block_on(refunds.refund(&req))
        .expect_err("the remembered unknown outcome");
    for err in [followed, repeat] {
        assert_eq!(*err.kind(), ErrorKind::Protocol, "{err}");
        assert!(err.outcome_unknown(), "{err}");
        assert!(
            !err.is_retryable(),
            "AfterPay: never re-sent blindly: {err}"
        );
    }
    assert_eq!(
        sandbox.requests_received(),
        sent,
        "the repeat was answered from memory, not sent"
    );
    runtime.block_on(sb.shutdown());
}
