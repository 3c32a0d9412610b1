//! Snapshots of what each provider receives and what the facade makes of each documented
//! answer. The mapping is pure, so these run without any I/O: a change in a transformer, a
//! generated type or a spec example shows up as a reviewable diff.

use refunds::providers::refund_result;
use refunds::{Answer, MerchantReference, Money, Provider, RefundReason, RefundRequest};
use test_support::documented::{self, item};

use crate::snapshots;

fn money(amount: &str, currency: &str) -> Money {
    Money::parse(amount, currency).unwrap()
}

/// The fixed set of unified requests every provider's wire body is snapshotted for. Each is
/// adapted to what the provider needs (AfterPay's capture number, OpenApp's order id) and
/// dropped where the provider cannot carry it (validation would reject it).
fn cases(provider: Provider) -> Vec<(&'static str, RefundRequest)> {
    let currency = test_support::currency(provider);
    let base = |amount: &str, reference: &str| {
        let request = RefundRequest::new(
            provider,
            "ORDER-1001",
            money(amount, currency),
            MerchantReference::new(reference).unwrap(),
        );
        test_support::documented::with_provider_fields(request)
    };
    let mut cases = vec![
        ("full_refund", base("100.00", "RF-full-1")),
        (
            "with_reason_and_description",
            base("24.98", "RF-reason-1")
                .with_reason(RefundReason::Returned)
                .with_description("Returned without charger cables."),
        ),
    ];
    cases.push(("partial_refund", base("0.29", "RF-partial-1")));
    if provider.capabilities().line_items {
        cases.push((
            "partial_with_line_items",
            base("36.00", "RF-items-1").with_line_items(vec![
                item("0001", 2, "12.00", "2.00", currency),
                item("0002", 1, "12.00", "2.00", currency),
            ]),
        ));
    }
    if provider == Provider::Moyasar {
        // Moyasar counts minor units of any currency: a 3-decimal one.
        cases.push((
            "three_decimal_currency",
            RefundRequest::new(
                provider,
                "ORDER-KWD",
                money("1.234", "KWD"),
                MerchantReference::new("RF-kwd-1").unwrap(),
            ),
        ));
    }
    cases
}

/// The wire body of `request`, pretty-printed as the exact text sent (amounts keep their
/// decimals: the generated types write them from their text, never through `f64`).
fn wire(request: &RefundRequest) -> String {
    request.validate().expect("snapshot cases are valid");
    test_support::wire_body_pretty(request).expect("a valid request has a wire body")
}

#[test]
fn wire_bodies() {
    snapshots(|| {
        for provider in Provider::ALL {
            for (name, request) in cases(provider) {
                insta::assert_snapshot!(
                    format!("wire_{}_{name}", provider.as_str()),
                    wire(&request)
                );
            }
        }
    });
}

#[test]
fn the_same_request_gives_byte_identical_bodies() {
    for provider in Provider::ALL {
        for (name, request) in cases(provider) {
            let first = wire(&request);
            let again = wire(&request.clone());
            assert_eq!(first, again, "{provider} {name}");
        }
    }
}

#[test]
fn three_decimal_currencies_are_rejected_where_the_unit_cannot_carry_them() {
    for provider in [Provider::Optty, Provider::OpenApp] {
        let mut request = RefundRequest::new(
            provider,
            "ORDER-KWD",
            money("1.234", "KWD"),
            MerchantReference::new("RF-kwd-1").unwrap(),
        );
        if provider == Provider::OpenApp {
            request = request.with_provider_order_id("OA1");
        }
        let err = request.validate().unwrap_err();
        assert!(
            err.field().unwrap().starts_with("amount"),
            "{provider}: {err}"
        );
    }
}

/// The request the documented answers are mapped against.
fn request_for(provider: Provider) -> RefundRequest {
    documented::request(provider)
}

#[test]
fn unified_result_of_every_documented_answer() {
    let specs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let mut seen = 0;
    for provider in Provider::ALL {
        let dir = specs.join(provider.as_str()).join("examples");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for path in files {
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let mut parts = name.split('.');
            let (operation, kind) = (parts.next().unwrap(), parts.next().unwrap());
            let Ok(status) = kind.parse::<u16>() else {
                continue; // request payloads
            };
            if operation != "refund" {
                continue; // Optty's token answer is not a refund result
            }
            let request = request_for(provider);
            let body = documented::answer(&request, &std::fs::read_to_string(&path).unwrap());
            let result = refund_result(&request, &Answer::new(status, body));
            let shown = match &result {
                Ok(refund) => format!("Ok({refund:#?})"),
                Err(err) => format!("Err({err:#?})\nretryable: {}", err.is_retryable()),
            };
            snapshots(|| {
                insta::assert_snapshot!(
                    format!("result_{}_{}", provider.as_str(), name.replace('.', "_")),
                    shown
                );
            });
            seen += 1;
        }
    }
    assert!(seen >= 12, "only {seen} documented answers found");
}

#[test]
fn non_json_and_undocumented_answers_never_panic() {
    let html = b"<html><body><h1>502 Bad Gateway</h1></body></html>";
    for provider in Provider::ALL {
        let request = request_for(provider);
        for (status, body) in [
            (502, &html[..]),
            (200, &html[..]),
            (418, &b"{}"[..]),
            (400, &b""[..]),
        ] {
            let result = refund_result(&request, &Answer::new(status, body.to_vec()));
            let err = result.expect_err("not a refund");
            assert_eq!(err.http_status(), Some(status), "{provider}: {err}");
            if (400..500).contains(&status) {
                // A 4xx is a refusal whatever its body.
                assert_eq!(
                    err.outcome(),
                    refunds::Outcome::NotApplied,
                    "{provider} {status}: {err}"
                );
                assert_eq!(err.field(), Some("request"), "{provider} {status}: {err}");
                continue;
            }
            assert!(err.outcome_unknown(), "{provider} {status}: {err}");
            let expected = if status >= 500 {
                refunds::ErrorKind::ServerError
            } else {
                refunds::ErrorKind::Protocol
            };
            assert_eq!(err.kind(), &expected, "{provider} {status}: {err}");
        }
    }
}

#[test]
fn optty_over_limit_message_carries_the_limit() {
    let body = br#"{"statusCode":400,"message":"You can only refund amount up to AUD 24.98","error":"Bad Request"}"#;
    let err =
        refund_result(&request_for(Provider::Optty), &Answer::new(400, &body[..])).unwrap_err();
    assert_eq!(
        err.kind(),
        &refunds::ErrorKind::ExceedsRefundable {
            limit: Some(money("24.98", "AUD"))
        }
    );
}

/// Error answers keep what the provider said and are classified by its codes and phrases only.
mod error_answers {
    use refunds::providers::refund_result;
    use refunds::{Answer, ErrorKind, Outcome, Provider};

    use super::request_for;

    fn error(provider: Provider, status: u16, body: &str) -> refunds::RefundError {
        refund_result(
            &request_for(provider),
            &Answer::new(status, body.to_owned()),
        )
        .expect_err("an error answer")
    }

    #[test]
    fn moyasar_order_without_our_transaction_is_unknown_and_not_retried() {
        let body = r#"{"id":"o","currency":"SAR","amount":100,"transactions":[{"id":"someone-else","type":"refund","status":"approved","amount":100}]}"#;
        let err = error(Provider::Moyasar, 200, body);
        assert_eq!(err.kind(), &ErrorKind::Protocol);
        assert!(err.outcome_unknown(), "Moyasar accepted the call: {err}");
        assert!(!err.is_retryable(), "a retry would replay the same order");
    }

    #[test]
    fn moyasar_word_exceeds_alone_is_not_an_over_refund() {
        let err = error(
            Provider::Moyasar,
            400,
            r#"{"message":"Description exceeds the maximum length"}"#,
        );
        assert!(
            matches!(err.kind(), ErrorKind::InvalidRequest { .. }),
            "{err:?}"
        );
        // The sandbox's own wording, which Moyasar does not document: a refusal, no more.
        let err = error(
            Provider::Moyasar,
            400,
            r#"{"message":"Refund amount exceeds the refundable amount."}"#,
        );
        assert!(
            matches!(err.kind(), ErrorKind::InvalidRequest { .. }),
            "{err:?}"
        );
        assert_eq!(err.outcome(), Outcome::NotApplied);
    }

    #[test]
    fn moyasar_422_keeps_every_field_and_names_our_path() {
        let body = r#"{"message":"Data validation failed","errors":{"transaction_id":["is not a UUID"],"amount":["must be greater than 0","must be an integer"]}}"#;
        let err = error(Provider::Moyasar, 422, body);
        assert_eq!(err.field(), Some("amount"));
        let fields: Vec<_> = err
            .provider_messages()
            .iter()
            .map(|m| (m.field.as_deref().unwrap(), m.message.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("amount", "must be greater than 0"),
                ("amount", "must be an integer"),
                ("transaction_id", "is not a UUID")
            ]
        );
        assert_eq!(err.outcome(), Outcome::NotApplied);
    }

    #[test]
    fn afterpay_headline_is_the_error_not_the_notification_and_unknown_enums_are_read() {
        let body = r#"[
            {"type":"NotificationMessage","code":"Info","message":"Your request was logged","actionCode":"SomethingNew"},
            {"type":"BusinessError","code":"ValidationError","message":"'captureNumber' is required.","fieldReference":"captureNumber","actionCode":"AskConsumerToReEnterData"}
        ]"#;
        let err = error(Provider::AfterPay, 400, body);
        assert_eq!(err.field(), Some("capture_number"));
        assert_eq!(err.provider_message(), Some("'captureNumber' is required."));
        assert_eq!(err.provider_code(), Some("ValidationError"));
        assert_eq!(err.provider_messages().len(), 2);
        assert_eq!(
            err.provider_messages()[0].field.as_deref(),
            Some("captureNumber"),
            "the provider's own name is kept beside ours"
        );
    }

    #[test]
    fn afterpay_over_refund_is_never_guessed_from_an_invented_code() {
        // `RefundAmountTooHigh` was our sandbox's invention, not Riverty's: a plain refusal.
        let too_high = r#"[{"type":"BusinessError","code":"RefundAmountTooHigh","message":"Refund amount is too high","fieldReference":"items"}]"#;
        let err = error(Provider::AfterPay, 400, too_high);
        assert_eq!(err.field(), Some("line_items"), "{err:?}");
        assert_eq!(err.outcome(), Outcome::NotApplied);
        let wordy = r#"[{"type":"BusinessError","code":"ValidationError","message":"'description' exceeds 255 characters","fieldReference":"items[0].description"}]"#;
        let err = error(Provider::AfterPay, 400, wordy);
        assert_eq!(err.field(), Some("line_items[0].description"), "{err:?}");
    }

    #[test]
    fn optty_unknown_refund_status_is_pending_not_an_error() {
        let body = r#"{"refundReference":"TgEHcPtpN2HSrTMK-0","bnplProvider":"KLARNA_AU","refundedAmount":100,"refundStatus":"PARTIALLY_REFUNDED","description":"","refundDate":"now","bnplRefundId":"r-1"}"#;
        let refund = refund_result(&request_for(Provider::Optty), &Answer::new(200, body))
            .expect("the refund exists");
        assert_eq!(refund.status, refunds::RefundStatus::Pending);
        assert_eq!(refund.raw.as_bytes(), body.as_bytes(), "as received");
    }

    #[test]
    fn optty_duplicate_reference_is_applied() {
        let err = error(
            Provider::Optty,
            400,
            r#"{"statusCode":400,"message":"Refund reference TgEHcPtpN2HSrTMK-0 already exists","error":"Bad Request"}"#,
        );
        assert_eq!(err.kind(), &ErrorKind::Duplicate);
        assert_eq!(err.outcome(), Outcome::Applied);
    }
}
