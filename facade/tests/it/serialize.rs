//! What a service returns or logs serializes: a [`RefundError`] as its [`ErrorSummary`]
//! (kind, outcome, provider code and messages), and a [`Refund`].

use std::time::Duration;

use refunds::{
    ErrorKind, ErrorSummary, FieldProblem, Money, Outcome, Provider, ProviderMessage, Refund,
    RefundError, RefundStatus,
};
use serde_json::json;

use crate::snapshots;

fn money(amount: &str, currency: &str) -> Money {
    Money::parse(amount, currency).unwrap()
}

/// The error's JSON, checked to equal its summary's and to read back as that summary.
fn json_of(error: &RefundError) -> serde_json::Value {
    let value = serde_json::to_value(error).unwrap();
    let summary = error.summary();
    assert_eq!(value, serde_json::to_value(&summary).unwrap());
    let back: ErrorSummary = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(back, summary);
    assert_eq!(value["message"], error.to_string());
    value
}

/// An invalid request names its field, reason and every problem; nothing was applied.
#[test]
fn an_invalid_request_serializes_with_its_field() {
    let error = RefundError::invalid("line_items[1].quantity", "must be at least 1")
        .with_provider(Provider::Moyasar)
        .with_problems(vec![
            FieldProblem {
                field: "line_items[1].quantity".into(),
                reason: "must be at least 1".into(),
            },
            FieldProblem {
                field: "amount".into(),
                reason: "must be greater than zero".into(),
            },
        ]);
    let value = json_of(&error);
    assert_eq!(value["kind"], "invalid_request");
    assert_eq!(value["field"], "line_items[1].quantity");
    assert_eq!(value["outcome"], "not_applied");
    assert_eq!(value["retryable"], false);
    assert_eq!(value["problems"][1]["field"], "amount");
    snapshots(|| insta::assert_json_snapshot!("invalid_request", error));
}

/// An over-refund carries the provider's limit as money.
#[test]
fn an_over_refund_serializes_with_its_limit() {
    let error = RefundError::new(ErrorKind::ExceedsRefundable {
        limit: Some(money("24.98", "AUD")),
    })
    .with_provider(Provider::Optty)
    .with_http_status(400)
    .with_provider_message("You can only refund amount up to AUD 24.98")
    .with_deduplication(true);
    let value = json_of(&error);
    assert_eq!(value["kind"], "exceeds_refundable");
    assert_eq!(
        value["limit"],
        json!({"amount": "24.98", "currency": "AUD"})
    );
    assert_eq!(value["field"], json!(null));
    assert_eq!(value["http_status"], 400);
    snapshots(|| insta::assert_json_snapshot!("exceeds_refundable", error));
}

/// A gateway's 5xx leaves the outcome unknown: the provider's code and every message are kept,
/// the wait it asked for is in milliseconds, and it is not retryable where the provider has no
/// duplicate key. The underlying cause is left out.
#[test]
fn an_unknown_server_error_serializes_with_the_providers_code_and_messages() {
    let error = RefundError::new(ErrorKind::ServerError)
        .with_provider(Provider::AfterPay)
        .with_http_status(502)
        .with_provider_code("Gateway.Upstream")
        .with_provider_message("upstream failed")
        .with_provider_messages(vec![
            ProviderMessage {
                code: Some("Upstream.Timeout".into()),
                message: "the order service did not answer".into(),
                field: None,
            },
            ProviderMessage {
                code: None,
                message: "try again later".into(),
                field: Some("orderNumber".into()),
            },
        ])
        .with_retry_after(Duration::from_millis(1500))
        .with_deduplication(false)
        .caused_by(std::io::Error::other(
            "connection to https://user:hunter2@gateway.invalid/ reset",
        ));
    let value = json_of(&error);
    assert_eq!(value["kind"], "server_error");
    assert_eq!(value["outcome"], "unknown");
    assert_eq!(value["retryable"], false);
    assert_eq!(value["provider"], "afterpay");
    assert_eq!(value["provider_code"], "Gateway.Upstream");
    assert_eq!(value["provider_messages"][0]["code"], "Upstream.Timeout");
    assert_eq!(value["provider_messages"][1]["field"], "orderNumber");
    assert_eq!(value["retry_after_ms"], 1500);
    assert!(!value.to_string().contains("hunter2"), "{value}");
    snapshots(|| insta::assert_json_snapshot!("server_error_unknown", error));

    // The same error from a provider that deduplicates may be re-sent.
    let deduplicated = error.with_deduplication(true);
    assert_eq!(json_of(&deduplicated)["retryable"], true);
}

/// The outcome's serde form is its stable name.
#[test]
fn outcomes_serialize_as_their_names() {
    for outcome in [Outcome::NotApplied, Outcome::Unknown, Outcome::Applied] {
        assert_eq!(
            serde_json::to_value(outcome).unwrap(),
            json!(outcome.as_str())
        );
        assert_eq!(
            serde_json::from_value::<Outcome>(json!(outcome.as_str())).unwrap(),
            outcome
        );
    }
}

/// A refund serializes with its provider, status, amounts and raw answer, and reads back.
#[test]
fn a_refund_serializes() {
    let refund = Refund {
        provider: Provider::Optty,
        provider_refund_id: Some("bnpl-42".into()),
        status: RefundStatus::Pending,
        amount: money("10.00", "AUD"),
        refunded_total: Some(money("15.00", "AUD")),
        captured_total: None,
        raw: refunds::RawAnswer::new(&br#"{"status":"PENDING"}"#[..]),
    };
    let value = serde_json::to_value(&refund).unwrap();
    assert_eq!(
        value,
        json!({
            "provider": "optty",
            "provider_refund_id": "bnpl-42",
            "status": "pending",
            "amount": {"amount": "10.00", "currency": "AUD"},
            "refunded_total": {"amount": "15.00", "currency": "AUD"},
            "captured_total": null,
            "raw": {"status": "PENDING"},
        })
    );
    let back: Refund = serde_json::from_value(value).unwrap();
    assert_eq!(back.amount, refund.amount);
    assert_eq!(back.status, refund.status);
}
