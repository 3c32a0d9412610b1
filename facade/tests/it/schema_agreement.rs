//! The facade's validation agrees with the spec: for requests generated around every boundary a
//! provider's spec states, `RefundRequest::validate()` accepts exactly when the wire body the
//! adapter would send (`refunds::providers::refund_body_json`) exists and validates against the
//! request body schema of the room's refund operation in the normalized spec
//! (`refunds::providers::refund_operation`, checked with the `jsonschema` crate as JSON Schema
//! draft 4, which OpenAPI 3.0's schema objects follow).
//!
//! Requests are generated inside the facade's own generic rules (charset of the reference,
//! line totals summing to the amount, ...), so every disagreement is about a spec constraint.

use proptest::prelude::*;
use refunds::{ByProvider, LineItem, MerchantReference, Money, Provider, RefundRequest};
use rust_decimal::Decimal;
use serde_json::Value;

/// The validators of every provider's refund request body: its refund operation's JSON request
/// body schema in its normalized spec, as the facade's room names the operation.
fn schemas() -> &'static ByProvider<jsonschema::Validator> {
    static SCHEMAS: std::sync::OnceLock<ByProvider<jsonschema::Validator>> =
        std::sync::OnceLock::new();
    SCHEMAS.get_or_init(|| {
        ByProvider::from_fn(|provider| {
            let operation = refunds::providers::refund_operation(provider).expect("compiled in");
            let schema = operation
                .request_body_schema()
                .unwrap_or_else(|| panic!("{provider}: {operation:?} has no JSON request body"));
            jsonschema::draft4::new(&schema).expect("a valid schema")
        })
    })
}

/// Whether the spec accepts what the adapter would send for `request`, and why not.
fn spec_accepts(request: &RefundRequest) -> Result<(), String> {
    let body = test_support::wire_body(request).ok_or("the adapter cannot build a body")?;
    let instance: Value = serde_json::from_str(&body).unwrap();
    let validator = schemas().get(request.provider);
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

fn check(request: &RefundRequest) -> Result<(), TestCaseError> {
    let facade = request.validate();
    // The facade's own limit, which no spec states: it refuses whatever the spec allows.
    let description_len = request
        .description
        .as_deref()
        .map_or(0, |d| d.chars().count());
    if description_len > refunds::Capabilities::MAX_DESCRIPTION_LEN {
        prop_assert!(
            facade.is_err(),
            "a description of {description_len} characters"
        );
        return Ok(());
    }
    let spec = spec_accepts(request);
    prop_assert_eq!(
        facade.is_ok(),
        spec.is_ok(),
        "{} facade: {:?} spec: {:?} request: {:?}",
        request.provider,
        facade.as_ref().map_err(ToString::to_string),
        spec,
        request
    );
    Ok(())
}

/// Lengths just below, at and above `max`.
fn around(max: usize) -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(max.saturating_sub(1).max(1)),
        Just(max),
        Just(max + 1),
        1..=max
    ]
}

fn reference(len: usize) -> MerchantReference {
    MerchantReference::new("R".repeat(len.min(MerchantReference::MAX_LEN))).unwrap()
}

fn goodwill(amount: Money) -> LineItem {
    LineItem {
        product_id: "goodwill".into(),
        description: "Goodwill".into(),
        quantity: 1,
        unit_price: amount,
        unit_vat: Money::zero(amount.currency()),
        vat_percent: Decimal::ZERO,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn openapp_lengths(
        reference_len in around(openapp_api::constraints::refund_order::case_id::MAX_LENGTH),
        order_len in around(openapp_api::constraints::refund_order::shop_order_id::MAX_LENGTH),
        notes_len in around(openapp_api::constraints::refund_order::notes::MAX_LENGTH
            .min(refunds::Capabilities::MAX_DESCRIPTION_LEN)),
        product_len in around(openapp_api::constraints::refund_order::products::items::id::MAX_LENGTH),
        with_items in any::<bool>(),
        cents in 1u64..=1_000_000,
    ) {
        let amount = Money::from_minor_units(i64::try_from(cents).unwrap(), refunds::Currency::from_code("PLN").unwrap());
        let mut request = RefundRequest::new(Provider::OpenApp, "O".repeat(order_len), amount, reference(reference_len))
            .with_provider_order_id("OA-1")
            .with_description("n".repeat(notes_len));
        if with_items {
            let mut item = goodwill(amount);
            item.product_id = "p".repeat(product_len);
            request = request.with_line_items(vec![item]);
        }
        check(&request)?;
    }

    #[test]
    fn afterpay_lengths_and_counts(
        reference_len in around(afterpay_api::constraints::refund_order::transaction_reference::MAX_LENGTH),
        capture_len in around(afterpay_api::constraints::refund_order::capture_number::MAX_LENGTH),
        product_len in around(afterpay_api::constraints::refund_order::items::items::product_id::MAX_LENGTH),
        count in around(afterpay_api::constraints::refund_order::items::MAX_ITEMS),
    ) {
        let cent = Money::parse("0.01", "EUR").unwrap();
        let amount = Money::from_minor_units(i64::try_from(count).unwrap(), cent.currency());
        let mut item = goodwill(cent);
        item.product_id = "p".repeat(product_len);
        let request = RefundRequest::new(Provider::AfterPay, "AP-1", amount, reference(reference_len))
            .with_capture_number("9".repeat(capture_len))
            .with_line_items(vec![item; count]);
        check(&request)?;
    }

    #[test]
    fn moyasar_amounts(
        minor in prop_oneof![
            Just(moyasar_api::constraints::refund_order::amount::MAXIMUM - 1),
            Just(moyasar_api::constraints::refund_order::amount::MAXIMUM),
            Just(moyasar_api::constraints::refund_order::amount::MAXIMUM + 1),
            Just(moyasar_api::constraints::refund_order::amount::MINIMUM),
            1i64..=200_000_000,
        ],
        code in prop_oneof![Just("SAR"), Just("KWD"), Just("JPY")],
        reference_len in 1usize..=MerchantReference::MAX_LEN,
    ) {
        let amount = Money::from_minor_units(minor, refunds::Currency::from_code(code).unwrap());
        check(&RefundRequest::new(Provider::Moyasar, "order-1", amount, reference(reference_len)))?;
    }

    #[test]
    fn optty_amounts(
        units in 1i64..=10_000_000,
        code in prop_oneof![Just("AUD"), Just("JPY"), Just("KWD"), Just("BHD"), Just("CLF")],
        reference_len in 1usize..=MerchantReference::MAX_LEN,
    ) {
        let amount = Money::from_minor_units(units, refunds::Currency::from_code(code).unwrap());
        check(&RefundRequest::new(Provider::Optty, "ORD-1", amount, reference(reference_len)))?;
    }
}
