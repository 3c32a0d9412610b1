//! Moyasar's order read in one pass (`moyasar::transformers`, "Reading the order in one pass")
//! agrees with the order decoded whole into the generated `moyasar_api::types::Order`.
//!
//! The reference here is the mapping as it was before the one-pass reading: the body decoded
//! into the generated `Order`, our transaction found in its `transactions`. Orders are generated
//! through the generated types and written by their `Serialize`, so a field the spec renames or
//! retypes changes both what is generated and what the reference reads, and the one-pass reading
//! (whose field names are written by hand) must follow or fail here. Then the cases generation
//! does not reach: escaped strings, bodies that are not an order, and the fields the mapping
//! does not read, which are checked for JSON syntax only.

use json_decimal::JsonInteger;
use moyasar_api::types::{Merchant, Order, Transaction};
use proptest::prelude::*;
use refunds::providers::moyasar::transformers::{read_result, refund_result, transaction_status};
use refunds::{
    Answer, Currency, ErrorKind, Finding, MerchantReference, Money, Provider, RefundError,
    RefundRequest, RefundStatus,
};
use std::time::SystemTime;

/// A refund of SAR 10.00 under `RF-1` on `ORD-1`.
fn request() -> RefundRequest {
    RefundRequest::new(
        Provider::Moyasar,
        "ORD-1",
        Money::parse("10.00", "SAR").unwrap(),
        MerchantReference::new("RF-1").unwrap(),
    )
}

/// Our refund transaction's id: the request's `transaction_id`.
fn our_id() -> String {
    request()
        .merchant_reference
        .moyasar_transaction_id()
        .to_string()
}

/// What the refund mapping returns, in comparable parts: the refund's id, status, amount and
/// the order's totals, or the error's kind and message.
type RefundParts = Result<
    (
        Option<String>,
        RefundStatus,
        Money,
        Option<Money>,
        Option<Money>,
    ),
    (ErrorKind, String),
>;

/// What the read mapping returns, in comparable parts: the finding's fields or absent (`None`),
/// or the error's message.
type ReadParts = Result<
    Option<(
        Option<String>,
        RefundStatus,
        Option<Money>,
        Option<String>,
        Option<String>,
    )>,
    String,
>;

fn is_refund(transaction: &Transaction) -> bool {
    transaction
        .type_
        .as_deref()
        .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("refund"))
}

fn currency_of(order: &Order, request: &RefundRequest) -> Result<Currency, String> {
    match order.currency.as_deref() {
        Some(code) => Currency::from_code(code).map_err(|err| err.to_string()),
        None => Ok(request.amount.currency()),
    }
}

/// The body's JSON (a byte order mark dropped), as the facade reads it.
fn json(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

/// The reference refund mapping of a 200: the whole order decoded into the generated type.
fn reference_refund(request: &RefundRequest, body: &[u8]) -> RefundParts {
    let protocol = |message: String| (ErrorKind::Protocol, message);
    let order: Order = serde_json::from_slice(json(body)).map_err(|e| protocol(e.to_string()))?;
    let id = our_id();
    let ours = |t: &&Transaction| t.id.as_deref() == Some(id.as_str());
    let Some(transaction) = order
        .transactions
        .iter()
        .filter(ours)
        .find(|t| is_refund(t))
    else {
        return Err(protocol(match order.transactions.iter().find(ours) {
            Some(other) => format!(
                "the order lists {id} as a {} transaction, not a refund",
                other.type_.as_deref().unwrap_or("untyped")
            ),
            None => format!("the order does not list the refund transaction {id}"),
        }));
    };
    let status = transaction_status(transaction.status.as_deref().unwrap_or_default());
    let currency = currency_of(&order, request).map_err(protocol)?;
    let minor =
        |value: Option<JsonInteger>| value.map(|m| Money::from_minor_units(m.get(), currency));
    Ok((
        transaction.id.clone(),
        status,
        minor(transaction.amount).unwrap_or(request.amount),
        minor(order.refunded_amount),
        minor(order.captured_amount),
    ))
}

/// The reference read mapping of a 200.
fn reference_read(request: &RefundRequest, body: &[u8]) -> ReadParts {
    let order: Order = serde_json::from_slice(json(body)).map_err(|e| e.to_string())?;
    let id = our_id();
    let Some(transaction) = order
        .transactions
        .iter()
        .find(|t| t.id.as_deref().map(str::trim) == Some(id.as_str()) && is_refund(t))
    else {
        return Ok(None);
    };
    let status = transaction_status(transaction.status.as_deref().unwrap_or_default());
    let currency = currency_of(&order, request)?;
    Ok(Some((
        transaction.id.clone(),
        status,
        transaction
            .amount
            .map(|m| Money::from_minor_units(m.get(), currency)),
        transaction.created_at.clone(),
        match status {
            RefundStatus::Failed => transaction.message.clone(),
            _ => None,
        },
    )))
}

/// The facade's refund mapping of a 200 with `body`, in the reference's parts.
fn facade_refund(request: &RefundRequest, body: &[u8]) -> RefundParts {
    let answer = Answer::new(200, body.to_vec());
    match refund_result(request, &answer) {
        Ok(refund) => {
            assert_eq!(refund.raw.as_bytes(), body, "the raw answer is the bytes");
            Ok((
                refund.provider_refund_id,
                refund.status,
                refund.amount,
                refund.refunded_total,
                refund.captured_total,
            ))
        }
        Err(error) => {
            assert!(error.outcome_unknown(), "a 200 that is no refund: {error}");
            Err((error.kind().clone(), message_of(&error)))
        }
    }
}

/// The facade's read mapping of a 200 with `body`, in the reference's parts.
fn facade_read(request: &RefundRequest, body: &[u8]) -> ReadParts {
    let answer = Answer::new(200, body.to_vec());
    match read_result(request, None, &answer, SystemTime::UNIX_EPOCH) {
        Ok(lookup) => match lookup.finding {
            Finding::Found(found) => Ok(Some((
                found.provider_refund_id,
                found.status,
                found.amount,
                found.created_at,
                found.failure_reason,
            ))),
            Finding::Absent => Ok(None),
            other => panic!("Moyasar's read finds or not: {other:?}"),
        },
        Err(error) => {
            assert!(error.outcome_unknown(), "a failed read: {error}");
            Err(message_of(&error))
        }
    }
}

/// The error's message, with the wrapping of a body that does not decode taken off: what the
/// reference's `serde_json` error says.
fn message_of(error: &RefundError) -> String {
    let message = error.provider_message().unwrap_or_default();
    match message.strip_prefix("HTTP 200 body does not match the spec (") {
        Some(rest) => rest[..rest.rfind("): ").unwrap_or(rest.len())].to_owned(),
        None => message.to_owned(),
    }
}

fn text() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some(String::new())),
        // Quotes, backslashes, control characters and non-ASCII: written with escapes.
        "[a-zA-Z0-9 \"\\\\\n\t/é€😀-]{0,16}".prop_map(Some),
    ]
}

fn transaction() -> impl Strategy<Value = Transaction> {
    let ours = our_id();
    let id = prop_oneof![
        Just(Some(ours.clone())),
        Just(Some(format!(" {ours} "))),
        Just(Some(ours.to_uppercase())),
        Just(Some("0191f5a7-44ab-7fbb-ab3c-1e1a98a5166e".to_owned())),
        text(),
    ];
    let kind = prop_oneof![
        Just(Some("refund".to_owned())),
        Just(Some(" Refund ".to_owned())),
        Just(Some("capture".to_owned())),
        Just(Some("void".to_owned())),
        text(),
    ];
    let status = prop_oneof![
        Just(Some("approved".to_owned())),
        Just(Some("FAILED".to_owned())),
        Just(Some("initiated".to_owned())),
        Just(Some("timeout".to_owned())),
        text(),
    ];
    let amount = proptest::option::of(any::<i64>().prop_map(JsonInteger));
    (
        (id, kind, status, amount.clone()),
        (text(), text(), text(), amount),
    )
        .prop_map(
            |((id, type_, status, amount), (message, created_at, other, refunded_amount))| {
                Transaction {
                    amount,
                    auth_code: other.clone(),
                    created_at,
                    id,
                    justification: other.clone(),
                    message,
                    refunded_amount,
                    response_code: other.clone(),
                    retrieval_reference: other.clone(),
                    reverse_reason: None,
                    reversed_transaction_id: other.clone(),
                    source_type: Some("merchant".to_owned()),
                    stan: other,
                    status,
                    type_,
                }
            },
        )
}

fn order() -> impl Strategy<Value = Order> {
    let currency = prop_oneof![
        Just(None),
        Just(Some("SAR".to_owned())),
        Just(Some("KWD".to_owned())),
        Just(Some("JPY".to_owned())),
        Just(Some("sar".to_owned())),
        Just(Some("XXX".to_owned())),
        text(),
    ];
    let amount = || proptest::option::of(any::<i64>().prop_map(JsonInteger));
    (
        currency,
        amount(),
        amount(),
        text(),
        any::<bool>(),
        proptest::collection::vec(transaction(), 0..8),
    )
        .prop_map(
            |(currency, refunded_amount, captured_amount, description, agreement, transactions)| {
                Order {
                    agreement: agreement.then(|| {
                        serde_json::json!({"terms": [1, 2.5, {"nested": null}], "ok": true})
                            .as_object()
                            .cloned()
                            .unwrap_or_default()
                    }),
                    amount: captured_amount,
                    captured_amount,
                    currency,
                    description: description.clone(),
                    id: Some("ORD-1".to_owned()),
                    merchant: Some(Merchant {
                        name: description,
                        ..Merchant::default()
                    }),
                    refunded_amount,
                    transactions,
                    ..Order::default()
                }
            },
        )
}

/// The order's bytes: compact or pretty, with or without a byte order mark.
fn body(order: &Order, pretty: bool, bom: bool) -> Vec<u8> {
    let mut body = if bom {
        b"\xEF\xBB\xBF".to_vec()
    } else {
        Vec::new()
    };
    body.extend(if pretty {
        serde_json::to_vec_pretty(order).unwrap()
    } else {
        serde_json::to_vec(order).unwrap()
    });
    body
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn one_pass_reading_agrees_with_the_generated_order(
        order in order(),
        pretty in any::<bool>(),
        bom in any::<bool>(),
    ) {
        let request = request();
        let body = body(&order, pretty, bom);
        prop_assert_eq!(facade_refund(&request, &body), reference_refund(&request, &body));
        prop_assert_eq!(facade_read(&request, &body), reference_read(&request, &body));
    }
}

/// `transactions` as a JSON array of the given transaction objects, in an order of SAR.
fn order_with(transactions: &str) -> Vec<u8> {
    format!(r#"{{"currency":"SAR","refunded_amount":1000,"transactions":[{transactions}]}}"#)
        .into_bytes()
}

#[test]
fn escaped_strings_are_read_as_their_text() {
    let request = request();
    let ours = our_id();
    // Our id with its first character escaped, and "refund" with an escape.
    let escaped = format!("\\u{:04x}{}", u32::from(ours.as_bytes()[0]), &ours[1..]);
    let body = order_with(&format!(
        r#"{{"id":"{escaped}","type":"re\u0066und","status":"fail\u0065d","amount":1000,"message":"d\u00e9clin\"\u00e9","created_at":"2024-09-15T12:27:45Z"}}"#
    ));
    let refund = refund_result(&request, &Answer::new(200, body.clone())).expect("our refund");
    assert_eq!(refund.provider_refund_id.as_deref(), Some(ours.as_str()));
    assert_eq!(refund.status, RefundStatus::Failed);
    assert_eq!(refund.amount, Money::parse("10.00", "SAR").unwrap());
    assert_eq!(
        facade_refund(&request, &body),
        reference_refund(&request, &body)
    );
    let read = facade_read(&request, &body);
    assert_eq!(read, reference_read(&request, &body));
    let failure_reason = read.unwrap().unwrap().4;
    assert_eq!(failure_reason.as_deref(), Some("déclin\"é"));
}

#[test]
fn a_body_that_is_no_order_is_refused_as_the_generated_type_refuses_it() {
    let request = request();
    let ours = our_id();
    let refund = format!(r#"{{"id":"{ours}","type":"refund","status":"approved","amount":1000}}"#);
    for body in [
        "null".to_owned(),
        "\"an order\"".to_owned(),
        "42".to_owned(),
        String::new(),
        "<html>502</html>".to_owned(),
        // Trailing characters after the order.
        format!(r#"{{"transactions":[{refund}]}} {{}}"#),
        // A field twice.
        format!(r#"{{"currency":"SAR","currency":"SAR","transactions":[{refund}]}}"#),
        format!(r#"{{"transactions":[{refund}],"transactions":[{refund}]}}"#),
        // Fields the mapping reads, of another type.
        format!(r#"{{"currency":682,"transactions":[{refund}]}}"#),
        format!(r#"{{"refunded_amount":"1000","transactions":[{refund}]}}"#),
        format!(r#"{{"captured_amount":10.5,"transactions":[{refund}]}}"#),
        format!(r#"{{"transactions":{refund}}}"#),
        r#"{"transactions":null}"#.to_owned(),
        format!(r#"{{"transactions":[1,{refund}]}}"#),
        // Any transaction's amount or text of another type, ours or not, before or after it.
        format!(r#"{{"transactions":[{{"id":"x","amount":1e-2}},{refund}]}}"#),
        format!(r#"{{"transactions":[{refund},{{"id":"x","amount":"12"}}]}}"#),
        format!(r#"{{"transactions":[{refund},{{"id":7}}]}}"#),
        format!(r#"{{"transactions":[{refund},{{"type":["refund"]}}]}}"#),
        format!(
            r#"{{"transactions":[{{"id":"{ours}","type":"refund","amount":9223372036854775808}}]}}"#
        ),
    ] {
        let expected = reference_refund(&request, body.as_bytes());
        assert!(expected.is_err(), "the generated type refuses {body}");
        let got = facade_refund(&request, body.as_bytes());
        assert_eq!(got, expected, "{body}");
        assert_eq!(
            facade_read(&request, body.as_bytes()),
            reference_read(&request, body.as_bytes()),
            "{body}"
        );
    }
    // A JSON array is no order either; serde's derive reads a struct from an array of its
    // fields, so the messages differ, not the verdict.
    let got = facade_refund(&request, b"[]");
    assert!(matches!(got, Err((ErrorKind::Protocol, _))), "{got:?}");
}

#[test]
fn fields_the_mapping_does_not_read_are_checked_for_json_syntax_only() {
    let request = request();
    let ours = our_id();
    let body = format!(
        r#"{{"merchant":5,"source":"card","description":[1],"voided_amount":"0","transactions":[{{"id":"{ours}","type":"refund","status":"approved","amount":1000,"stan":12,"refunded_amount":"0"}}],"currency":"SAR"}}"#
    );
    assert!(
        reference_refund(&request, body.as_bytes()).is_err(),
        "the generated Order refuses these fields"
    );
    let refund = refund_result(&request, &Answer::new(200, body.clone().into_bytes()))
        .expect("our refund is read; the rest of the order does not decide it");
    assert_eq!(refund.status, RefundStatus::Succeeded);
    assert_eq!(refund.provider_refund_id.as_deref(), Some(ours.as_str()));
    // Broken JSON anywhere is still refused.
    let broken = body.replace(r#""source":"card""#, r#""source":card"#);
    let error = refund_result(&request, &Answer::new(200, broken.into_bytes())).unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::Protocol);
    assert!(error.outcome_unknown());
}
