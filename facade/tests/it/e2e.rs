//! End to end: the `refunds` facade against the `sandbox` emulators, over real loopback HTTP.
//!
//! Every scenario in the first half runs once per provider, as `<scenario>::<provider>`
//! (`partial_refunds_then_over_balance::afterpay`), so a failure names the provider. The second
//! half holds provider-specific scenarios (Optty tokens, OpenApp signatures, Moyasar's
//! in-flight duplicate rule, AfterPay's whole-capture refund).
//!
//! Each test starts its own sandbox (ephemeral ports), so tests are independent and can run in
//! parallel. Nothing waits on wall-clock sleeps: `Sandbox::start` returns once listening, and the
//! one concurrent scenario waits on the sandbox's own in-flight counter.

use std::time::{Duration, Instant};

use refunds::signing::{OpenAppSignature, openapp_signature, verify_openapp_signature};
use refunds::{
    ErrorKind, MerchantReference, Money, Outcome, Provider, Refund, RefundError, RefundRequest,
    RefundStatus, Refunds, RetryPolicy, SecretString, Settlement,
};
use rust_decimal::Decimal;
use sandbox::credentials::{OPENAPP_API_KEY, OPENAPP_API_SECRET};
use sandbox::openapp::{REFUND_PATH, ResponseSigning};
use sandbox::{
    DEFAULT_CAPTURE_NUMBER, Fault, Match, OrderSeed, OrderState, ProviderHandle, Sandbox,
    SandboxConfig,
};
use test_support::{
    CAPTURED, ClientSettings, Credentials, DEMO, OverRefund, TIMEOUT, WRONG, currency, dec,
    duplicate_key, line_item, money, oa_order_id, reference, request,
};

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// The status a new refund has, as the provider reports it: OpenApp only acknowledges.
fn expected_status(provider: Provider) -> RefundStatus {
    test_support::new_refund_status(provider)
}

use test_support::Repeat;

fn repeat(provider: Provider) -> Repeat {
    *test_support::REPEAT.get(provider)
}

/// A facade client with all four providers pointed at `sb`, with `credentials`.
fn client(sb: &Sandbox, credentials: &Credentials) -> Refunds {
    test_support::client_with(
        sb,
        &ClientSettings::default().with_credentials(*credentials),
    )
}

/// A running sandbox and a facade client with the demo credentials.
struct Env {
    sb: Sandbox,
    refunds: Refunds,
}

impl Env {
    async fn start() -> Env {
        Env::with_config(SandboxConfig::default()).await
    }

    async fn with_config(config: SandboxConfig) -> Env {
        let sb = test_support::start_sandbox_with(config).await;
        let refunds = client(&sb, &DEMO);
        Env { sb, refunds }
    }

    /// Another client on the same sandbox, as another replica of the service would have: it
    /// shares no single-flight state with `refunds`, so only the provider's own duplicate rule
    /// stands between the two.
    fn replica(&self) -> Refunds {
        client(&self.sb, &DEMO)
    }

    fn handle(&self, provider: Provider) -> &ProviderHandle {
        test_support::handle(&self.sb, provider)
    }

    /// Seeds an order of [`CAPTURED`] in the provider's currency (OpenApp: with its own id).
    fn seed(&self, provider: Provider, order_id: &str) {
        test_support::seed(&self.sb, provider, order_id);
    }

    fn order(&self, provider: Provider, order_id: &str) -> OrderState {
        self.handle(provider)
            .order(order_id)
            .unwrap_or_else(|| panic!("{provider}: the sandbox has no order {order_id}"))
    }

    async fn refund(&self, request: &RefundRequest) -> Result<Refund, RefundError> {
        self.refunds.refund(request).await
    }

    /// A refund that must succeed.
    async fn refund_ok(&self, request: &RefundRequest) -> Refund {
        self.refund(request).await.unwrap_or_else(|e| {
            panic!(
                "{}: refund {} should succeed: {e} ({e:?})",
                request.provider, request.merchant_reference
            )
        })
    }

    /// A refund that must fail.
    async fn refund_err(&self, request: &RefundRequest) -> RefundError {
        match self.refund(request).await {
            Ok(refund) => panic!(
                "{}: refund {} should fail, got {refund:?}",
                request.provider, request.merchant_reference
            ),
            Err(err) => err,
        }
    }
}

/// Waits, without sleeping, until `condition` holds (at most 10 s).
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::task::yield_now().await;
    }
}

/// The sandbox's order after a refund: `refunded` in total, one recorded refund per entry of
/// `references` (in order, each with the provider's duplicate key).
fn assert_recorded(
    provider: Provider,
    order: &OrderState,
    refunded: &str,
    references: &[&MerchantReference],
) {
    assert_eq!(
        order.refunded,
        dec(refunded),
        "{provider}: refunded total of order {}",
        order.id
    );
    let keys: Vec<Option<String>> = order.refunds.iter().map(|r| r.reference.clone()).collect();
    let expected: Vec<Option<String>> = references
        .iter()
        .map(|r| Some(duplicate_key(provider, r)))
        .collect();
    assert_eq!(
        keys, expected,
        "{provider}: refunds recorded on order {}",
        order.id
    );
}

/// `mod $name { #[tokio::test] async fn <room>() .. }` for each `$variant $room` of the list.
macro_rules! scenario_per_provider {
    ([$($variant:ident $room:ident)*] $name:ident => $scenario:path) => {
        mod $name {
            use refunds::Provider;

            $(
                #[tokio::test]
                async fn $room() {
                    $scenario(Provider::$variant).await;
                }
            )*
        }
    };
}

/// Each scenario's module, with one test per provider of `$providers`.
macro_rules! scenarios {
    ($providers:tt $($name:ident => $scenario:path;)+) => {$(
        scenario_per_provider! { $providers $name => $scenario }
    )+};
}

/// The scenarios run for every provider of the facade's one list (`refunds::__providers!`), so
/// a new provider's scenarios run without an edit here.
macro_rules! each_provider {
    ($( $(#[$doc:meta])* $variant:ident $room:ident $name:literal $client:ident $config:ident; )*) => {
        scenarios! { [$($variant $room)*]
            full_refund_succeeds => super::full_refund;
            partial_refunds_then_over_balance => super::partial_refunds_then_over_balance;
            same_request_twice_refunds_once => super::same_request_twice;
            dropped_connection_after_commit_then_retry => super::dropped_after_commit_then_retry;
            wrong_credentials_are_unauthorized => super::wrong_credentials;
            unknown_order_is_order_not_found => super::unknown_order;
            invalid_input_never_reaches_the_provider => super::invalid_input;
            server_error_outcome_is_unknown => super::server_error;
            gateway_timeout_after_commit_settles_once => super::gateway_timeout_after_commit;
            oversized_answers_are_outcome_unknown => super::oversized_answers;
            concurrent_identical_requests_send_once => super::concurrent_identical_requests;
            reused_reference_with_another_request_is_refused => super::reused_reference;
            retries_wait_out_transient_failures => super::retries_after_not_applied;
            html_bad_gateway_outcome_is_unknown => super::html_bad_gateway;
            malformed_success_body_is_not_a_success => super::malformed_body;
        }
    };
}

refunds::__providers!(each_provider);

// ---------------------------------------------------------------------------------------------
// Scenarios run for every provider
// ---------------------------------------------------------------------------------------------

/// Scenario 1: The whole captured amount comes back; the sandbox's refunded total equals it.
async fn full_refund(provider: Provider) {
    let env = Env::start().await;
    env.seed(provider, "ORD-FULL");
    let merchant_ref = reference("RF-FULL-1");
    let req = request(provider, "ORD-FULL", CAPTURED, merchant_ref.as_str());

    let refund = env.refund_ok(&req).await;

    assert_eq!(refund.provider, provider);
    assert_eq!(
        refund.status,
        expected_status(provider),
        "{provider}: status"
    );
    assert_eq!(
        refund.amount,
        money(provider, CAPTURED),
        "{provider}: amount"
    );
    let order = env.order(provider, "ORD-FULL");
    assert_recorded(provider, &order, CAPTURED, &[&merchant_ref]);
    assert_eq!(order.refundable(), Decimal::ZERO, "{provider}: refundable");
    assert_eq!(
        refund.provider_refund_id.as_deref(),
        Some(order.refunds[0].id.as_str()),
        "{provider}: the facade's refund id is the provider's"
    );
    let totals = test_support::REPORTS_TOTALS
        .get(provider)
        .then(|| money(provider, CAPTURED));
    assert_eq!(refund.refunded_total, totals, "{provider}: refunded_total");
    assert_eq!(refund.captured_total, totals, "{provider}: captured_total");
}

/// Scenario 2: Two partial refunds, then a third beyond what is left: refused, nothing recorded;
/// the exact remainder still goes through.
async fn partial_refunds_then_over_balance(provider: Provider) {
    let env = Env::start().await;
    env.seed(provider, "ORD-PART");
    let (ref1, ref2, ref3, ref4) = (
        reference("RF-PART-1"),
        reference("RF-PART-2"),
        reference("RF-PART-3"),
        reference("RF-PART-4"),
    );

    let first = env
        .refund_ok(&request(provider, "ORD-PART", "30.00", ref1.as_str()))
        .await;
    assert_eq!(first.amount, money(provider, "30.00"));
    assert_eq!(first.status, expected_status(provider));
    let second = env
        .refund_ok(&request(provider, "ORD-PART", "40.00", ref2.as_str()))
        .await;
    assert_eq!(second.amount, money(provider, "40.00"));
    if let Some(total) = second.refunded_total {
        assert_eq!(
            total,
            money(provider, "70.00"),
            "{provider}: refunded_total"
        );
    }
    assert_recorded(
        provider,
        &env.order(provider, "ORD-PART"),
        "70.00",
        &[&ref1, &ref2],
    );

    let err = env
        .refund_err(&request(provider, "ORD-PART", "30.01", ref3.as_str()))
        .await;
    let remaining = money(provider, "30.00");
    match (test_support::OVER_REFUND.get(provider), err.kind()) {
        (OverRefund::ExceedsWithLimit, ErrorKind::ExceedsRefundable { limit }) => {
            assert_eq!(limit, &Some(remaining), "{provider}: {err}")
        }
        (OverRefund::Exceeds, ErrorKind::ExceedsRefundable { limit: None }) => {}
        (OverRefund::Refused, ErrorKind::InvalidRequest { .. }) => {}
        (_, other) => panic!("{provider}: unexpected {other:?} ({err:?})"),
    }
    assert_eq!(err.provider(), Some(provider));
    assert!(!err.is_retryable(), "{provider}: {err:?}");
    assert!(!err.outcome_unknown(), "{provider}: {err:?}");
    assert_recorded(
        provider,
        &env.order(provider, "ORD-PART"),
        "70.00",
        &[&ref1, &ref2],
    );

    // Exactly the remainder is still refundable.
    let last = env
        .refund_ok(&request(provider, "ORD-PART", "30.00", ref4.as_str()))
        .await;
    assert_eq!(last.amount, remaining);
    assert_recorded(
        provider,
        &env.order(provider, "ORD-PART"),
        CAPTURED,
        &[&ref1, &ref2, &ref4],
    );
}

/// Scenario 3: The same request twice: one refund. The same client answers the repeat from its
/// memory; another replica reaches the provider, which deduplicates: OpenApp answers 409
/// `RefundExistsException` (applied), the others replay the original answer.
async fn same_request_twice(provider: Provider) {
    let env = Env::start().await;
    env.seed(provider, "ORD-DUP");
    let merchant_ref = reference("RF-DUP-1");
    let req = request(provider, "ORD-DUP", "25.00", merchant_ref.as_str());

    let first = env.refund_ok(&req).await;
    let received = env.handle(provider).requests_received();
    let second = env.refund_ok(&req).await;
    assert_eq!(second, first, "{provider}: the repeat is the same refund");
    assert_eq!(
        env.handle(provider).requests_received(),
        received,
        "{provider}: the repeat was answered without I/O"
    );

    let replica = env.replica().refund(&req).await;
    match repeat(provider) {
        Repeat::RefusesAsApplied => {
            let err = replica.expect_err("openapp: a repeated caseId must be refused");
            assert_eq!(err.kind(), &ErrorKind::Duplicate, "{err:?}");
            assert_eq!(err.outcome(), Outcome::Applied, "{err:?}");
            assert_eq!(err.http_status(), Some(409));
            assert_eq!(err.provider_code(), Some("RefundExistsException"));
            assert!(!err.is_retryable());
        }
        // AfterPay documents no duplicate key: the sandbox replays on transactionReference only
        // when configured to, so another replica is not sent here (see the journal).
        Repeat::NoDuplicateKey => {}
        Repeat::Replays => {
            let again = replica.unwrap_or_else(|e| panic!("{provider}: replay failed: {e:?}"));
            assert_eq!(again.provider_refund_id, first.provider_refund_id);
            assert_eq!(again.amount, first.amount);
            assert_eq!(again.status, first.status);
        }
    }
    assert_eq!(env.handle(provider).refund_count(), 1, "{provider}");
    assert_recorded(
        provider,
        &env.order(provider, "ORD-DUP"),
        "25.00",
        &[&merchant_ref],
    );
}

/// Scenario 4: The provider commits the refund, then the connection drops before any answer: the
/// outcome is unknown. Sending the same request again never refunds twice.
async fn dropped_after_commit_then_retry(provider: Provider) {
    let env = Env::start().await;
    env.seed(provider, "ORD-DROP");
    let merchant_ref = reference("RF-DROP-1");
    let req = request(provider, "ORD-DROP", "20.00", merchant_ref.as_str());
    let fault = env
        .handle(provider)
        .inject(Fault::DropAfterCommit, Match::Any.once());

    let err = env.refund_err(&req).await;
    assert_eq!(fault.fired(), 1, "{provider}: the fault must have fired");
    assert_eq!(err.kind(), &ErrorKind::Timeout, "{provider}: {err:?}");
    assert_eq!(err.provider(), Some(provider));
    assert!(err.outcome_unknown(), "{provider}: {err:?}");
    // Safe to resend only where the provider deduplicates (AfterPay documents no duplicate key).
    assert_eq!(
        err.is_retryable(),
        provider.capabilities().idempotent_retries,
        "{provider}: {err:?}"
    );
    // The refund was applied although no answer came back.
    assert_recorded(
        provider,
        &env.order(provider, "ORD-DROP"),
        "20.00",
        &[&merchant_ref],
    );

    // The caller resends the same request (same merchant reference).
    let retry = env.refund(&req).await;
    match repeat(provider) {
        // Duplicate after an ambiguous attempt: the first one was applied.
        Repeat::RefusesAsApplied => {
            let err = retry.expect_err("openapp: the retry must see the first attempt");
            assert_eq!(err.kind(), &ErrorKind::Duplicate, "{err:?}");
            assert_eq!(err.outcome(), Outcome::Applied, "{err:?}");
        }
        // No duplicate key: the client does not send it again; it answers the unknown outcome
        // it remembers until the caller reconciles.
        Repeat::NoDuplicateKey => {
            let again = retry.expect_err("afterpay: an unknown outcome is not re-sent");
            assert_eq!(again.kind(), &ErrorKind::Timeout, "{again:?}");
            assert!(again.outcome_unknown());
        }
        Repeat::Replays => {
            let refund = retry.unwrap_or_else(|e| panic!("{provider}: retry failed: {e:?}"));
            assert_eq!(refund.amount, money(provider, "20.00"));
            assert_eq!(refund.status, expected_status(provider));
            let order = env.order(provider, "ORD-DROP");
            assert_eq!(
                refund.provider_refund_id.as_deref(),
                Some(order.refunds[0].id.as_str())
            );
        }
    }
    assert_eq!(env.handle(provider).refund_count(), 1, "{provider}");
    assert_recorded(
        provider,
        &env.order(provider, "ORD-DROP"),
        "20.00",
        &[&merchant_ref],
    );
}

/// Scenario 5a: Credentials the provider does not know.
async fn wrong_credentials(provider: Provider) {
    let env = Env::start().await;
    env.seed(provider, "ORD-AUTH");
    let refunds = client(&env.sb, &WRONG);
    let req = request(provider, "ORD-AUTH", "10.00", "RF-AUTH-1");

    let err = refunds
        .refund(&req)
        .await
        .expect_err("wrong credentials must be refused");

    assert_eq!(err.kind(), &ErrorKind::Unauthorized, "{provider}: {err:?}");
    assert_eq!(err.http_status(), Some(401), "{provider}: {err:?}");
    assert_eq!(err.provider(), Some(provider));
    assert!(!err.is_retryable(), "{provider}: {err:?}");
    assert!(!err.outcome_unknown(), "{provider}: {err:?}");
    assert!(env.handle(provider).requests_received() > 0, "{provider}");
    assert_eq!(env.handle(provider).refund_count(), 0, "{provider}");
}

/// Scenario 5b: An order the provider does not know.
async fn unknown_order(provider: Provider) {
    let env = Env::start().await;
    env.seed(provider, "ORD-KNOWN");
    let req = request(provider, "ORD-MISSING", "10.00", "RF-MISSING-1");

    let err = env.refund_err(&req).await;

    assert_eq!(err.kind(), &ErrorKind::OrderNotFound, "{provider}: {err:?}");
    assert_eq!(err.http_status(), Some(404), "{provider}: {err:?}");
    assert_eq!(err.provider(), Some(provider));
    assert!(!err.is_retryable(), "{provider}: {err:?}");
    assert_eq!(env.handle(provider).refund_count(), 0, "{provider}");
}

/// Scenario 5c: Invalid input is refused before any I/O, naming the field; no request reaches any
/// sandbox.
async fn invalid_input(provider: Provider) {
    let env = Env::start().await;
    env.seed(provider, "ORD-BAD");
    let valid = || request(provider, "ORD-BAD", "10.00", "RF-BAD-1");
    let with_amount = |amount: Money| {
        let mut req = valid();
        req.amount = amount;
        req.line_items.clear();
        req
    };
    let mut cases: Vec<(&str, RefundRequest)> = vec![
        ("amount", request(provider, "ORD-BAD", "-5.00", "RF-BAD-1")),
        ("amount", request(provider, "ORD-BAD", "0.00", "RF-BAD-1")),
        ("order_id", request(provider, "   ", "10.00", "RF-BAD-1")),
        (
            "description",
            valid().with_description("x".repeat(refunds::Capabilities::MAX_DESCRIPTION_LEN + 1)),
        ),
    ];
    // What the provider refuses on top, one case per limit or rule its capabilities state (the
    // limits are its spec's, which `schema_agreement` holds the validation to).
    let caps = provider.capabilities();
    let ten = money(provider, "10.00");
    if caps.line_items {
        let item = line_item(money(provider, "9.99"));
        cases.push(("line_items", valid().with_line_items(vec![item])));
        let mut item = line_item(ten);
        item.quantity = 0;
        cases.push((
            "line_items[0].quantity",
            valid().with_line_items(vec![item]),
        ));
        if let Some(max) = caps.max_product_id_len {
            let mut item = line_item(ten);
            item.product_id = "P".repeat(max + 1);
            cases.push((
                "line_items[0].product_id",
                valid().with_line_items(vec![item]),
            ));
        }
    } else {
        cases.push(("line_items", valid().with_line_items(vec![line_item(ten)])));
    }
    // 1.234 KWD: three decimals, and not a whole multiple of a cent.
    let kwd = Money::parse("1.234", "KWD").unwrap();
    if caps
        .currency_exponents
        .is_some_and(|exponents| !exponents.contains(&kwd.currency().exponent()))
    {
        cases.push(("amount.currency", with_amount(kwd)));
    } else if caps
        .amount_multiple_of
        .is_some_and(|step| !(kwd.amount() % step).is_zero())
    {
        cases.push(("amount", with_amount(kwd)));
    }
    if let Some(max) = caps.max_minor_units {
        let over = Money::from_minor_units(max + 1, ten.currency());
        cases.push(("amount", with_amount(over)));
    }
    if let Some(max) = caps.max_order_id_len {
        let mut req = valid();
        req.order_id = "O".repeat(max + 1);
        cases.push(("order_id", req));
    }
    if caps.requires_capture_number {
        let mut req = valid();
        req.capture_number = None;
        cases.push(("capture_number", req));
        if let Some(max) = caps.max_capture_number_len {
            cases.push((
                "capture_number",
                valid().with_capture_number("9".repeat(max + 1)),
            ));
        }
    } else {
        let req = valid().with_capture_number(DEFAULT_CAPTURE_NUMBER);
        cases.push(("capture_number", req));
    }
    if caps.requires_provider_order_id {
        let mut req = valid();
        req.provider_order_id = None;
        cases.push(("provider_order_id", req));
    } else {
        cases.push((
            "provider_order_id",
            valid().with_provider_order_id("OA-ORD-BAD"),
        ));
    }

    for (field, req) in &cases {
        let err = env.refund_err(req).await;
        assert!(
            matches!(err.kind(), ErrorKind::InvalidRequest { .. }),
            "{provider}: expected InvalidRequest on {field}, got {err:?}"
        );
        assert_eq!(err.field(), Some(*field), "{provider}: {err}");
        assert_eq!(err.provider(), Some(provider), "{provider}: {err:?}");
        assert_eq!(err.http_status(), None, "{provider}: {err:?}");
        assert!(!err.is_retryable(), "{provider}: {err:?}");
    }

    // What cannot even be built: an overlong or ill-formed reference, an over-precise amount.
    for bad in [
        "R".repeat(MerchantReference::MAX_LEN + 1),
        "RF 1".to_owned(),
        String::new(),
    ] {
        let err = MerchantReference::new(bad.clone()).expect_err("an invalid reference");
        assert!(matches!(err.kind(), ErrorKind::InvalidRequest { .. }));
        assert_eq!(err.field(), Some("merchant_reference"), "{bad:?}: {err}");
    }
    assert!(Money::parse("10.001", currency(provider)).is_err());

    for other in Provider::ALL {
        assert_eq!(
            env.handle(other).requests_received(),
            0,
            "{provider}: invalid requests reached the {other} sandbox"
        );
    }
    assert_eq!(env.order(provider, "ORD-BAD").refunded, Decimal::ZERO);
}

/// Scenario 9a: A 500 may come after the provider committed: outcome unknown. Where the
/// provider deduplicates, resending the same request refunds once; AfterPay's is not re-sent by
/// the client until the caller has reconciled it and says so ([`Refunds::forget`]).
async fn server_error(provider: Provider) {
    gateway_failure(provider, Fault::Status(500), 500).await;
}

/// Scenario 9b: A gateway's HTML 502 before the provider acted: the same, with the status kept.
async fn html_bad_gateway(provider: Provider) {
    gateway_failure(provider, Fault::NonJson502, 502).await;
}

async fn gateway_failure(provider: Provider, fault: Fault, status: u16) {
    let env = Env::start().await;
    env.seed(provider, "ORD-5XX");
    let merchant_ref = reference("RF-5XX-1");
    let req = request(provider, "ORD-5XX", "15.00", merchant_ref.as_str());
    env.handle(provider).inject(fault, Match::Any.once());

    let err = env.refund_err(&req).await;
    assert_eq!(err.kind(), &ErrorKind::ServerError, "{provider}: {err:?}");
    assert_eq!(err.http_status(), Some(status), "{provider}: {err:?}");
    assert!(err.outcome_unknown(), "{provider}: {err:?}");
    assert_eq!(
        err.is_retryable(),
        provider.capabilities().idempotent_retries,
        "{provider}: {err:?}"
    );
    assert_eq!(env.handle(provider).refund_count(), 0, "{provider}");

    if provider == Provider::AfterPay {
        let again = env.refund_err(&req).await;
        assert_eq!(again.kind(), &ErrorKind::ServerError, "not re-sent");
        assert_eq!(env.handle(provider).refund_count(), 0);
        // The operator found nothing at AfterPay (refund_count is 0): the client may send it.
        assert!(env.refunds.forget(provider, &merchant_ref));
    }
    let refund = env.refund_ok(&req).await;
    assert_eq!(refund.amount, money(provider, "15.00"));
    assert_recorded(
        provider,
        &env.order(provider, "ORD-5XX"),
        "15.00",
        &[&merchant_ref],
    );
}

/// Scenario 9c: The provider commits, then a proxy answers 200 with HTML: the facade must not call
/// that a refund (nor panic); the outcome is unknown, and a resend does not refund twice.
async fn malformed_body(provider: Provider) {
    let env = Env::start().await;
    env.seed(provider, "ORD-HTML");
    let merchant_ref = reference("RF-HTML-1");
    let req = request(provider, "ORD-HTML", "15.00", merchant_ref.as_str());
    env.handle(provider)
        .inject(Fault::MalformedBody, Match::Any.once());

    let err = env.refund_err(&req).await;
    assert_eq!(err.kind(), &ErrorKind::Protocol, "{provider}: {err:?}");
    assert_eq!(err.http_status(), Some(200), "{provider}: {err:?}");
    assert_eq!(err.provider(), Some(provider));
    // The sandbox did commit it, so the facade must not claim it surely did not happen.
    assert!(err.outcome_unknown(), "{provider}: {err:?}");

    match env.refund(&req).await {
        Ok(refund) => assert_eq!(refund.amount, money(provider, "15.00")),
        Err(err) if repeat(provider) == Repeat::NoDuplicateKey => {
            assert_eq!(
                err.kind(),
                &ErrorKind::Protocol,
                "remembered, not re-sent: {err:?}"
            );
        }
        Err(err) => assert_eq!(err.kind(), &ErrorKind::Duplicate, "{provider}: {err:?}"),
    }
    assert_recorded(
        provider,
        &env.order(provider, "ORD-HTML"),
        "15.00",
        &[&merchant_ref],
    );
}

/// Retries as fast as a test wants them.
fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        ..RetryPolicy::default()
    }
}

/// Scenario 10: A gateway answers 502 or 504 after the provider committed the refund. The
/// outcome is unknown, never "nothing happened"; the executor settles it with one refund
/// where the provider deduplicates, and never re-sends on AfterPay (no duplicate key).
async fn gateway_timeout_after_commit(provider: Provider) {
    for status in [502, 504] {
        let env = Env::start().await;
        env.seed(provider, "ORD-GW");
        let merchant_ref = reference("RF-GW-1");
        let req = request(provider, "ORD-GW", "12.00", merchant_ref.as_str());
        env.handle(provider)
            .inject(Fault::StatusAfterCommit(status), Match::Any.once());

        let err = env.refund_err(&req).await;
        assert_eq!(
            err.kind(),
            &ErrorKind::ServerError,
            "{provider} {status}: {err:?}"
        );
        assert_eq!(err.http_status(), Some(status));
        assert!(err.outcome_unknown(), "{provider} {status}: {err:?}");
        assert_eq!(
            env.handle(provider).refund_count(),
            1,
            "committed before the page"
        );

        // The same fault through the executor, on a fresh order.
        env.seed(provider, "ORD-GW-2");
        let merchant_ref = reference("RF-GW-2");
        let req = request(provider, "ORD-GW-2", "12.00", merchant_ref.as_str());
        env.handle(provider)
            .inject(Fault::StatusAfterCommit(status), Match::Any.once());
        let received = env.handle(provider).requests_received();
        let settlement = env.refunds.refund_with_retries(&req, &fast_retries()).await;
        let sends = env.handle(provider).requests_received() - received;
        match (repeat(provider), &settlement) {
            (Repeat::NoDuplicateKey, Settlement::Unresolved { error, attempts }) => {
                assert_eq!(*attempts, 1, "never re-sent");
                assert_eq!(sends, 1, "never re-sent");
                assert_eq!(error.http_status(), Some(status));
            }
            (
                Repeat::RefusesAsApplied,
                Settlement::Applied {
                    already_applied,
                    attempts,
                    refund,
                },
            ) => {
                assert!(already_applied, "the retry met RefundExistsException");
                assert_eq!((*attempts, sends), (2, 2));
                assert_eq!(refund.provider_refund_id.as_deref(), Some("RF-GW-2"));
            }
            (
                Repeat::Replays,
                Settlement::Applied {
                    already_applied,
                    attempts,
                    refund,
                },
            ) => {
                assert!(!already_applied, "{provider} replays the refund itself");
                assert_eq!((*attempts, sends), (2, 2));
                assert_eq!(refund.amount, money(provider, "12.00"));
            }
            (_, other) => panic!("{provider} {status}: {other:?}"),
        }
        assert_recorded(
            provider,
            &env.order(provider, "ORD-GW-2"),
            "12.00",
            &[&merchant_ref],
        );
        env.sb.shutdown().await;
    }
}

/// Scenario 11: An answer past the size caps is not read: outcome unknown, and the refund that
/// the provider committed is settled once by the executor (not on AfterPay: unresolved).
async fn oversized_answers(provider: Provider) {
    let env = Env::start().await;
    for (n, fault) in [
        Fault::OversizedBody(2 * provider.default_answer_limits().max_body_bytes),
        Fault::OversizedHeaders(128 * 1024),
    ]
    .into_iter()
    .enumerate()
    {
        let order_id = format!("ORD-BIG-{n}");
        env.seed(provider, &order_id);
        let merchant_ref = reference(&format!("RF-BIG-{n}"));
        let req = request(provider, &order_id, "11.00", merchant_ref.as_str());
        env.handle(provider)
            .inject(fault.clone(), Match::Any.once());
        let err = env.refund_err(&req).await;
        assert_eq!(
            err.kind(),
            &ErrorKind::Protocol,
            "{provider} {fault:?}: {err:?}"
        );
        assert!(err.outcome_unknown(), "{provider} {fault:?}: {err:?}");
        assert!(
            err.provider_message()
                .unwrap_or_default()
                .contains("allowed"),
            "{provider} {fault:?}: the message names the cap: {err}"
        );
        assert_recorded(
            provider,
            &env.order(provider, &order_id),
            "11.00",
            &[&merchant_ref],
        );

        // The same through the executor, on another order.
        let order_id = format!("ORD-BIG-{n}-RETRIED");
        env.seed(provider, &order_id);
        let merchant_ref = reference(&format!("RF-BIG-{n}-RETRIED"));
        let req = request(provider, &order_id, "11.00", merchant_ref.as_str());
        env.handle(provider)
            .inject(fault.clone(), Match::Any.once());
        let settlement = env.refunds.refund_with_retries(&req, &fast_retries()).await;
        let expected = if provider == Provider::AfterPay {
            Outcome::Unknown
        } else {
            Outcome::Applied
        };
        assert_eq!(
            settlement.outcome(),
            expected,
            "{provider} {fault:?}: {settlement:?}"
        );
        assert_recorded(
            provider,
            &env.order(provider, &order_id),
            "11.00",
            &[&merchant_ref],
        );
    }
}

/// Scenario 12: Eight concurrent calls with the same request, 200 rounds: one refund per round
/// on the provider (AfterPay included, whose sandbox does not replay), and every caller told
/// the same outcome.
async fn concurrent_identical_requests(provider: Provider) {
    const ROUNDS: usize = 200;
    const CALLERS: usize = 8;
    let env = Env::start().await;
    for round in 0..ROUNDS {
        let order_id = format!("ORD-SF-{round}");
        env.seed(provider, &order_id);
        let merchant_ref = format!("RF-SF-{round}");
        let req = request(provider, &order_id, "10.00", &merchant_ref);
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..CALLERS {
            let refunds = env.refunds.clone();
            let req = req.clone();
            callers.spawn(async move { refunds.refund(&req).await });
        }
        let results: Vec<Result<Refund, RefundError>> = callers.join_all().await;
        let first = results[0]
            .as_ref()
            .unwrap_or_else(|e| panic!("{provider}: {e:?}"));
        for result in &results {
            assert_eq!(
                result.as_ref().ok(),
                Some(first),
                "{provider} round {round}"
            );
        }
        let order = env.order(provider, &order_id);
        assert_eq!(
            order.refunds.len(),
            1,
            "{provider} round {round}: {order:?}"
        );
    }
}

/// Scenario 13: The same merchant reference with a different request is a misuse of the
/// duplicate key: refused before any I/O, while the first is in flight and after it settled.
async fn reused_reference(provider: Provider) {
    let env = Env::start().await;
    env.seed(provider, "ORD-REUSE");
    let req = request(provider, "ORD-REUSE", "10.00", "RF-REUSE-1");
    env.handle(provider).inject(
        Fault::Latency(Duration::from_millis(300)),
        Match::Any.once(),
    );
    let other = request(provider, "ORD-REUSE", "20.00", "RF-REUSE-1");
    // While the first is held on the wire (its first request, Optty's token or the refund,
    // waits out the latency), the second is refused without a request of its own.
    let (first, (during, sent_during)) = tokio::join!(env.refund(&req), async {
        wait_until("the first is on the wire", || {
            env.handle(provider).requests_received() > 0
        })
        .await;
        let before = env.handle(provider).requests_received();
        let during = env.refund(&other).await;
        (during, env.handle(provider).requests_received() - before)
    });
    assert_eq!(
        sent_during, 0,
        "{provider}: sent while the first was in flight"
    );
    first.unwrap_or_else(|e| panic!("{provider}: {e:?}"));
    let sent = env.handle(provider).requests_received();
    let after = env.refund(&other).await;
    for err in [during, after] {
        let err = err.expect_err("a reused reference");
        assert_eq!(
            err.field(),
            Some("merchant_reference"),
            "{provider}: {err:?}"
        );
        assert_eq!(err.outcome(), Outcome::NotApplied);
    }
    assert_eq!(
        env.handle(provider).requests_received(),
        sent,
        "{provider}: nothing else sent"
    );
}

/// Scenario 14: A failure that applied nothing (a 503 before the provider acted, with
/// `Retry-After`; a 429) is waited out and retried with the same request: one refund.
async fn retries_after_not_applied(provider: Provider) {
    let env = Env::start().await;
    env.seed(provider, "ORD-429");
    let merchant_ref = reference("RF-429-1");
    let req = request(provider, "ORD-429", "10.00", merchant_ref.as_str());
    env.handle(provider)
        .inject(Fault::Status(429), Match::Any.times(2));
    let settlement = env.refunds.refund_with_retries(&req, &fast_retries()).await;
    match settlement {
        Settlement::Applied {
            attempts,
            already_applied,
            ..
        } => {
            assert_eq!(attempts, 3, "{provider}");
            assert!(!already_applied);
        }
        other => panic!("{provider}: {other:?}"),
    }
    assert_recorded(
        provider,
        &env.order(provider, "ORD-429"),
        "10.00",
        &[&merchant_ref],
    );

    // A refusal is final and says so.
    let too_much = request(provider, "ORD-429", "95.00", "RF-429-2");
    match env
        .refunds
        .refund_with_retries(&too_much, &fast_retries())
        .await
    {
        Settlement::Rejected { error, attempts } => {
            assert_eq!(attempts, 1);
            assert!(
                matches!(
                    error.kind(),
                    ErrorKind::ExceedsRefundable { .. } | ErrorKind::InvalidRequest { .. }
                ),
                "{provider}: {error:?}"
            );
        }
        other => panic!("{provider}: {other:?}"),
    }
}

/// OpenApp: an unsigned or wrongly signed answer (the refund committed behind it) is never a
/// success; the executor's retry meets the signed 409 and settles it as already applied.
#[tokio::test]
async fn openapp_unsigned_or_badly_signed_answers_are_not_successes() {
    let env = Env::start().await;
    for (n, fault) in [Fault::UnsignedAnswer, Fault::WrongSignature]
        .into_iter()
        .enumerate()
    {
        let order_id = format!("ORD-SIG-{n}");
        env.seed(Provider::OpenApp, &order_id);
        let merchant_ref = reference(&format!("RF-SIG-{n}"));
        let req = request(Provider::OpenApp, &order_id, "10.00", merchant_ref.as_str());
        env.sb.openapp().inject(fault.clone(), Match::Any.once());
        let err = env.replica().refund(&req).await.expect_err("not trusted");
        assert_eq!(err.kind(), &ErrorKind::Protocol, "{fault:?}: {err:?}");
        assert!(err.outcome_unknown(), "{fault:?}");
        assert!(err.is_retryable(), "OpenApp deduplicates on caseId");
        assert!(err.to_string().contains("signature"), "{err}");

        env.sb.openapp().inject(fault.clone(), Match::Any.once());
        match env.refunds.refund_with_retries(&req, &fast_retries()).await {
            Settlement::Applied {
                already_applied: true,
                attempts: 2,
                ..
            } => {}
            other => panic!("{fault:?}: {other:?}"),
        }
    }
    assert_eq!(env.sb.openapp().refund_count(), 2);
}

// ---------------------------------------------------------------------------------------------
// Optty: bearer tokens
// ---------------------------------------------------------------------------------------------

/// Scenario 6: The token is invalidated between two refunds (as when it expires): the facade gets a
/// 401, fetches a new token and resends, and the caller sees a plain success.
#[tokio::test]
async fn optty_token_expired_between_refunds_is_renewed_transparently() {
    let env = Env::start().await;
    env.seed(Provider::Optty, "ORD-TOKEN");
    let optty = env.sb.optty();

    let before = optty.requests_received();
    env.refund_ok(&request(
        Provider::Optty,
        "ORD-TOKEN",
        "10.00",
        "RF-TOKEN-1",
    ))
    .await;
    // POST /token, then the refund.
    assert_eq!(optty.requests_received() - before, 2);

    optty.expire_tokens();
    let before = optty.requests_received();
    let refund = env
        .refund_ok(&request(
            Provider::Optty,
            "ORD-TOKEN",
            "20.00",
            "RF-TOKEN-2",
        ))
        .await;
    assert_eq!(refund.status, RefundStatus::Succeeded);
    // The refund refused with 401, a second POST /token, the refund again.
    assert_eq!(optty.requests_received() - before, 3);
    assert_eq!(optty.refund_count(), 2);
    assert_eq!(
        env.order(Provider::Optty, "ORD-TOKEN").refunded,
        dec("30.00")
    );

    // The renewed token is cached: the next refund is one request.
    let before = optty.requests_received();
    env.refund_ok(&request(Provider::Optty, "ORD-TOKEN", "5.00", "RF-TOKEN-3"))
        .await;
    assert_eq!(optty.requests_received() - before, 1);
}

/// Scenario 6b: Tokens that expire soon (here 30 s, inside the facade's 60 s margin) are renewed
/// before use rather than sent to expire in flight: each refund fetches a token, none is refused.
#[tokio::test]
async fn optty_token_close_to_expiry_is_renewed_before_use() {
    let env = Env::with_config(SandboxConfig {
        optty: sandbox::optty::Settings {
            token_lifetime: Duration::from_secs(30),
            ..Default::default()
        },
        ..SandboxConfig::default()
    })
    .await;
    env.seed(Provider::Optty, "ORD-SHORT");
    let optty = env.sb.optty();

    for (i, amount) in ["10.00", "20.00"].into_iter().enumerate() {
        let before = optty.requests_received();
        env.refund_ok(&request(
            Provider::Optty,
            "ORD-SHORT",
            amount,
            &format!("RF-SHORT-{i}"),
        ))
        .await;
        // POST /token, then the refund: no 401 round trip.
        assert_eq!(optty.requests_received() - before, 2, "refund {i}");
    }
    assert_eq!(optty.refund_count(), 2);
}

/// Scenario 6c: Refunds that start together on a client with no token yet share one token: one
/// `POST /token`, then each refund once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optty_refunds_that_start_together_fetch_one_token() {
    let env = Env::start().await;
    env.seed(Provider::Optty, "ORD-TOGETHER");
    let optty = env.sb.optty();
    let requests: Vec<RefundRequest> = (0..4)
        .map(|i| {
            request(
                Provider::Optty,
                "ORD-TOGETHER",
                "1.00",
                &format!("RF-TOGETHER-{i}"),
            )
        })
        .collect();

    let before = optty.requests_received();
    tokio::join!(
        env.refund_ok(&requests[0]),
        env.refund_ok(&requests[1]),
        env.refund_ok(&requests[2]),
        env.refund_ok(&requests[3]),
    );
    assert_eq!(optty.requests_received() - before, 1 + 4);
    assert_eq!(optty.refund_count(), 4);
}

/// Optty reports `PENDING` refunds as such (settled later by its webhook).
#[tokio::test]
async fn optty_pending_refund_is_pending() {
    let env = Env::start().await;
    env.sb.optty().seed_order(
        OrderSeed::new("ORD-PENDING", "AUD", dec(CAPTURED))
            .refund_status(sandbox::RefundStatus::Pending),
    );
    let refund = env
        .refund_ok(&request(
            Provider::Optty,
            "ORD-PENDING",
            "10.00",
            "RF-PEND-1",
        ))
        .await;
    assert_eq!(refund.status, RefundStatus::Pending);
    assert_eq!(env.sb.optty().refund_count(), 1);
}

// ---------------------------------------------------------------------------------------------
// OpenApp: request signatures, driven with raw HTTP
// ---------------------------------------------------------------------------------------------

/// Raw, hand-signed requests to the OpenApp sandbox.
struct RawOpenApp<'a> {
    sb: &'a Sandbox,
    http: reqwest::Client,
}

/// What the sandbox answered.
struct Answer {
    status: u16,
    body: serde_json::Value,
    authorization: Option<String>,
    signature: Option<String>,
    raw: Vec<u8>,
}

impl<'a> RawOpenApp<'a> {
    fn new(env: &'a Env) -> RawOpenApp<'a> {
        env.sb.openapp().seed_order(
            OrderSeed::new("ORD-RAW", "PLN", dec(CAPTURED)).oa_order_id(oa_order_id("ORD-RAW")),
        );
        RawOpenApp {
            sb: &env.sb,
            http: reqwest::Client::builder().timeout(TIMEOUT).build().unwrap(),
        }
    }

    /// A refund body of `amount` 1/100s PLN on the seeded order.
    fn body(case_id: &str, amount: u64) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "oaOrderId": oa_order_id("ORD-RAW"),
            "shopOrderId": "ORD-RAW",
            "currency": "PLN",
            "amount": amount,
            "caseId": case_id,
            "reason": "RETURNED",
        }))
        .unwrap()
    }

    /// The sandbox's clock, epoch milliseconds.
    fn now_ms(&self) -> u64 {
        self.sb.openapp().now_ms()
    }

    /// Signs `body` for the refund route with the demo credentials.
    fn sign(&self, body: &[u8], epoch_ms: u64, nonce: &str) -> OpenAppSignature {
        openapp_signature(
            OPENAPP_API_KEY,
            &SecretString::from(OPENAPP_API_SECRET),
            "POST",
            REFUND_PATH,
            epoch_ms,
            nonce,
            body,
        )
    }

    async fn send(&self, signed: &OpenAppSignature, body: &[u8]) -> Answer {
        let response = self
            .http
            .post(self.sb.openapp().refund_url())
            .header("authorization", signed.authorization.as_str())
            .header("x-app-signature", signed.signature.as_str())
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (authorization, signature) = (header("authorization"), header("x-app-signature"));
        let raw = response.bytes().await.unwrap().to_vec();
        let body = serde_json::from_slice(&raw).unwrap_or(serde_json::Value::Null);
        Answer {
            status,
            body,
            authorization,
            signature,
            raw,
        }
    }

    fn refund_count(&self) -> usize {
        self.sb.openapp().refund_count()
    }
}

fn assert_unauthorized(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 401, "{what}: {}", answer.body);
    assert_eq!(
        answer.body["exception"], "UnauthorizedException",
        "{what}: {}",
        answer.body
    );
}

fn assert_registered(answer: &Answer, case_id: &str, what: &str) {
    assert_eq!(answer.status, 200, "{what}: {}", answer.body);
    assert_eq!(answer.body["caseId"], case_id, "{what}: {}", answer.body);
}

fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Scenario 7a: A request whose signature does not match what was sent is refused and records
/// nothing; the same request correctly signed goes through (so the refusal is the signature's).
#[tokio::test]
async fn openapp_tampered_signature_is_rejected() {
    let env = Env::start().await;
    let raw = RawOpenApp::new(&env);
    let body = RawOpenApp::body("CASE-SIG-1", 1_000);

    // A signature with one character changed.
    let mut signed = raw.sign(&body, raw.now_ms(), &nonce());
    let first = signed.signature.remove(0);
    signed
        .signature
        .insert(0, if first == 'A' { 'B' } else { 'A' });
    assert_unauthorized(&raw.send(&signed, &body).await, "altered signature");

    // A body changed after signing (a larger amount).
    let signed = raw.sign(&body, raw.now_ms(), &nonce());
    let altered = RawOpenApp::body("CASE-SIG-1", 9_000);
    assert_unauthorized(&raw.send(&signed, &altered).await, "altered body");

    // Signed with another secret.
    let forged = openapp_signature(
        OPENAPP_API_KEY,
        &SecretString::from("a-guessed-secret"),
        "POST",
        REFUND_PATH,
        raw.now_ms(),
        &nonce(),
        &body,
    );
    assert_unauthorized(&raw.send(&forged, &body).await, "wrong secret");

    // Signed for another path.
    let elsewhere = openapp_signature(
        OPENAPP_API_KEY,
        &SecretString::from(OPENAPP_API_SECRET),
        "POST",
        "/merchant/v1/orders/status",
        raw.now_ms(),
        &nonce(),
        &body,
    );
    assert_unauthorized(&raw.send(&elsewhere, &body).await, "other path");

    assert_eq!(raw.refund_count(), 0);
    assert_eq!(
        env.order(Provider::OpenApp, "ORD-RAW").refunded,
        Decimal::ZERO
    );

    // The same body, correctly signed, is accepted, and the answer is signed in turn.
    let signed = raw.sign(&body, raw.now_ms(), &nonce());
    let answer = raw.send(&signed, &body).await;
    assert_registered(&answer, "CASE-SIG-1", "correctly signed");
    let (Some(authorization), Some(signature)) = (&answer.authorization, &answer.signature) else {
        panic!("the sandbox's answer is not signed");
    };
    assert!(verify_openapp_signature(
        &SecretString::from(OPENAPP_API_SECRET),
        authorization,
        &answer.raw,
        signature
    ));
    assert_eq!(raw.refund_count(), 1);
    assert_eq!(
        env.order(Provider::OpenApp, "ORD-RAW").refunded,
        dec("10.00")
    );
}

/// Scenario 7b: A correctly signed request whose timestamp is outside the 60 s window (either way)
/// is refused and records nothing; the same body signed now goes through.
#[tokio::test]
async fn openapp_stale_timestamp_is_rejected() {
    let env = Env::start().await;
    let raw = RawOpenApp::new(&env);
    let body = RawOpenApp::body("CASE-TS-1", 1_000);
    let now = raw.now_ms();

    for (what, epoch_ms) in [
        ("5 minutes old", now - 300_000),
        ("61 s old", now - 61_000),
        ("5 minutes ahead", now + 300_000),
    ] {
        let signed = raw.sign(&body, epoch_ms, &nonce());
        assert_unauthorized(&raw.send(&signed, &body).await, what);
    }
    assert_eq!(raw.refund_count(), 0);

    let signed = raw.sign(&body, raw.now_ms(), &nonce());
    assert_registered(&raw.send(&signed, &body).await, "CASE-TS-1", "fresh");
    assert_eq!(raw.refund_count(), 1);
}

/// Scenario 7c: A nonce is good for one request: reusing it, even on a new correctly signed refund,
/// is refused; the same refund with a fresh nonce goes through.
#[tokio::test]
async fn openapp_replayed_nonce_is_rejected() {
    let env = Env::start().await;
    let raw = RawOpenApp::new(&env);
    let used = nonce();

    let body = RawOpenApp::body("CASE-NONCE-1", 1_000);
    let signed = raw.sign(&body, raw.now_ms(), &used);
    assert_registered(&raw.send(&signed, &body).await, "CASE-NONCE-1", "first use");
    assert_eq!(raw.refund_count(), 1);

    // The captured request replayed verbatim: refused by its nonce, before the caseId check.
    assert_unauthorized(&raw.send(&signed, &body).await, "verbatim replay");

    // A new refund, correctly signed, but with the used nonce.
    let other = RawOpenApp::body("CASE-NONCE-2", 2_000);
    let reused = raw.sign(&other, raw.now_ms(), &used);
    assert_unauthorized(&raw.send(&reused, &other).await, "reused nonce");
    assert_eq!(raw.refund_count(), 1);
    assert_eq!(
        env.order(Provider::OpenApp, "ORD-RAW").refunded,
        dec("10.00")
    );

    let fresh = raw.sign(&other, raw.now_ms(), &nonce());
    assert_registered(
        &raw.send(&fresh, &other).await,
        "CASE-NONCE-2",
        "fresh nonce",
    );
    assert_eq!(raw.refund_count(), 2);
}

/// The facade refuses to believe an answer whose signature does not verify; the refund was
/// recorded, so the outcome is unknown and a resend answers Duplicate.
#[tokio::test]
async fn openapp_tampered_response_signature_is_not_trusted() {
    let env = Env::start().await;
    env.seed(Provider::OpenApp, "ORD-RESP");
    env.sb
        .openapp()
        .set_response_signing(ResponseSigning::Tampered);
    let req = request(Provider::OpenApp, "ORD-RESP", "10.00", "RF-RESP-1");

    let err = env.refund_err(&req).await;
    assert_eq!(err.kind(), &ErrorKind::Protocol, "{err:?}");
    assert!(err.outcome_unknown());
    assert_eq!(env.sb.openapp().refund_count(), 1);

    env.sb
        .openapp()
        .set_response_signing(ResponseSigning::Valid);
    let err = env.refund_err(&req).await;
    assert_eq!(err.kind(), &ErrorKind::Duplicate, "{err:?}");
    assert_eq!(env.sb.openapp().refund_count(), 1);
}

/// An API key OpenApp does not know (the HMAC secret is the demo one): Unauthorized, like the
/// wrong secret of `wrong_credentials_are_unauthorized::openapp`.
#[tokio::test]
async fn openapp_unknown_api_key_is_unauthorized() {
    let env = Env::start().await;
    env.seed(Provider::OpenApp, "ORD-KEY");
    let refunds = client(
        &env.sb,
        &Credentials {
            openapp_api_key: "0123456789abcdef0123456789abcdef",
            ..DEMO
        },
    );
    let err = refunds
        .refund(&request(Provider::OpenApp, "ORD-KEY", "10.00", "RF-KEY-1"))
        .await
        .expect_err("an unknown API key must be refused");
    assert_eq!(err.kind(), &ErrorKind::Unauthorized, "{err:?}");
    assert!(!err.is_retryable(), "{err:?}");
    assert_eq!(env.sb.openapp().refund_count(), 0);
}

// ---------------------------------------------------------------------------------------------
// Moyasar: a duplicate while the first attempt is still processing
// ---------------------------------------------------------------------------------------------

/// Scenario 8: The first attempt is slowed down; the same request sent meanwhile gets "Initial
/// request is still processing." (InProgress, retryable). One refund in the end, and a later resend
/// replays it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moyasar_duplicate_while_first_in_flight_is_in_progress() {
    let env = Env::start().await;
    env.seed(Provider::Moyasar, "ORD-RACE");
    let moyasar = env.sb.moyasar();
    let fault = moyasar.inject(Fault::Latency(Duration::from_secs(2)), Match::Any.once());
    let merchant_ref = reference("RF-RACE-1");
    let req = request(
        Provider::Moyasar,
        "ORD-RACE",
        "10.00",
        merchant_ref.as_str(),
    );

    let replica = env.replica();
    let (first, second) = tokio::join!(env.refund(&req), async {
        // Send the duplicate only once the first attempt holds the idempotency key.
        wait_until("the first attempt is in flight", || {
            moyasar.in_flight() == 1
        })
        .await;
        // Another replica: this client would have joined the first attempt instead.
        replica.refund(&req).await
    });

    let first = first.unwrap_or_else(|e| panic!("the first attempt failed: {e:?}"));
    assert_eq!(first.status, RefundStatus::Succeeded);
    let err = second.expect_err("the concurrent duplicate must be refused");
    assert_eq!(err.kind(), &ErrorKind::InProgress, "{err:?}");
    assert_eq!(err.http_status(), Some(400));
    assert!(err.is_retryable(), "{err:?}");
    // The first attempt may still be applied (and was).
    assert!(err.outcome_unknown(), "{err:?}");
    assert_eq!(fault.fired(), 1);
    assert_eq!(moyasar.in_flight(), 0);
    assert_recorded(
        Provider::Moyasar,
        &env.order(Provider::Moyasar, "ORD-RACE"),
        "10.00",
        &[&merchant_ref],
    );

    // Retrying the InProgress answer later replays the one refund.
    let again = replica
        .refund(&req)
        .await
        .unwrap_or_else(|e| panic!("the replay failed: {e:?}"));
    assert_eq!(again.provider_refund_id, first.provider_refund_id);
    assert_eq!(moyasar.refund_count(), 1);
}

// ---------------------------------------------------------------------------------------------
// AfterPay: a refund without line items
// ---------------------------------------------------------------------------------------------

/// Without line items AfterPay refunds the whole remaining capture; asking for exactly that
/// amount is a full refund.
#[tokio::test]
async fn afterpay_full_refund_without_line_items_is_refused_before_io() {
    // Without items AfterPay refunds the whole remaining capture whatever `amount` says, so
    // the facade requires the amount as line items, even for a full refund.
    let env = Env::start().await;
    env.seed(Provider::AfterPay, "ORD-WHOLE");
    let req = RefundRequest::new(
        Provider::AfterPay,
        "ORD-WHOLE",
        money(Provider::AfterPay, CAPTURED),
        reference("RF-WHOLE-1"),
    )
    .with_capture_number(DEFAULT_CAPTURE_NUMBER);

    let err = env.refund_err(&req).await;
    assert_eq!(err.field(), Some("line_items"), "{err:?}");
    assert_eq!(env.sb.afterpay().requests_received(), 0);
    assert_eq!(env.order(Provider::AfterPay, "ORD-WHOLE").refunds.len(), 0);
}

/// A partial amount without line items: AfterPay cannot express it and refunds the whole
/// remaining capture instead. The facade must not report a refund of the requested amount when
/// the provider refunded more: it either refuses the request before any I/O, or reports what
/// was actually refunded.
#[tokio::test]
async fn afterpay_partial_amount_without_line_items_is_not_misreported() {
    let env = Env::start().await;
    env.seed(Provider::AfterPay, "ORD-NOITEMS");
    let req = RefundRequest::new(
        Provider::AfterPay,
        "ORD-NOITEMS",
        money(Provider::AfterPay, "10.00"),
        reference("RF-NOITEMS-1"),
    )
    .with_capture_number(DEFAULT_CAPTURE_NUMBER);

    match env.refund(&req).await {
        Err(err) => {
            assert!(
                matches!(err.kind(), ErrorKind::InvalidRequest { .. }),
                "{err:?}"
            );
            assert_eq!(env.sb.afterpay().requests_received(), 0);
        }
        Ok(refund) => {
            let order = env.order(Provider::AfterPay, "ORD-NOITEMS");
            let refunded: Vec<Decimal> = order.refunds.iter().map(|r| r.amount).collect();
            assert_eq!(
                vec![refund.amount.amount()],
                refunded,
                "the facade reports {} refunded, the provider refunded {refunded:?}",
                refund.amount
            );
        }
    }
}
