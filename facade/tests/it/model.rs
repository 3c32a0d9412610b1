//! The unified model: `RefundRequest::validate` (every rule, with its field
//! name), capabilities, merchant references, errors and serde shapes.

use refunds::{
    Capabilities, ErrorKind, LineItem, MerchantReference, Money, Provider, Refund, RefundError,
    RefundReason, RefundRequest, RefundStatus,
};
use rust_decimal::Decimal;
use serde_json::json;

fn money(amount: &str, code: &str) -> Money {
    Money::parse(amount, code).unwrap()
}

fn reference(s: &str) -> MerchantReference {
    MerchantReference::new(s).unwrap()
}

/// The currency every provider accepts in these tests.
fn currency_for(provider: Provider) -> &'static str {
    test_support::currency(provider)
}

/// A valid request for `provider` refunding `amount` (in the provider's test currency).
fn request(provider: Provider, amount: &str) -> RefundRequest {
    let r = RefundRequest::new(
        provider,
        "ORDER-1",
        money(amount, currency_for(provider)),
        reference("RET-123434"),
    );
    test_support::documented::with_provider_fields(r)
}

#[test]
fn afterpay_needs_line_items_for_its_amount() {
    let r = request(Provider::AfterPay, "10.00").with_line_items(Vec::new());
    assert_invalid(&r, "line_items");
}

fn item(product_id: &str, quantity: u32, unit_price: &str, unit_vat: &str, code: &str) -> LineItem {
    LineItem {
        product_id: product_id.into(),
        description: format!("{product_id} description"),
        quantity,
        unit_price: money(unit_price, code),
        unit_vat: money(unit_vat, code),
        vat_percent: Decimal::from(20),
    }
}

/// Asserts `validate` fails with `InvalidRequest` on exactly `field`.
#[track_caller]
fn assert_invalid(request: &RefundRequest, field: &str) -> RefundError {
    let err = request
        .validate()
        .expect_err(&format!("expected {field} to be rejected"));
    assert!(
        matches!(err.kind(), ErrorKind::InvalidRequest { field: f, .. } if f == field),
        "expected field {field}, got {err}"
    );
    assert_eq!(err.field(), Some(field));
    assert_eq!(err.provider(), Some(request.provider));
    err
}

#[track_caller]
fn assert_valid(request: &RefundRequest) {
    if let Err(e) = request.validate() {
        panic!("expected a valid request, got {e}");
    }
}

// ---- generic rules -------------------------------------------------------

#[test]
fn baseline_requests_are_valid_for_every_provider() {
    for provider in Provider::ALL {
        assert_valid(&request(provider, "24.98"));
    }
}

#[test]
fn amount_must_be_positive() {
    for provider in Provider::ALL {
        let err = assert_invalid(&request(provider, "0"), "amount");
        assert!(err.to_string().contains("greater than zero"), "{err}");
        assert_invalid(&request(provider, "-1.00"), "amount");
    }
}

#[test]
fn amount_must_fit_minor_units() {
    let r = RefundRequest::new(
        Provider::Optty,
        "ORDER-1",
        money("99999999999999999999.99", "AUD"),
        reference("R1"),
    );
    assert_invalid(&r, "amount");
}

#[test]
fn order_id_must_not_be_blank() {
    for provider in Provider::ALL {
        let mut r = request(provider, "1.00");
        r.order_id = String::new();
        assert_invalid(&r, "order_id");
        r.order_id = "  ".into();
        assert_invalid(&r, "order_id");
    }
}

#[test]
fn description_is_at_most_the_facade_limit_or_the_providers() {
    for provider in Provider::ALL {
        // The facade's own limit, narrowed by the provider's field where its spec states one.
        let max = provider
            .capabilities()
            .max_description_len
            .map_or(refunds::Capabilities::MAX_DESCRIPTION_LEN, |field| {
                field.min(refunds::Capabilities::MAX_DESCRIPTION_LEN)
            });
        assert_valid(&request(provider, "1.00").with_description("é".repeat(max)));
        let err = assert_invalid(
            &request(provider, "1.00").with_description("x".repeat(max + 1)),
            "description",
        );
        assert!(err.to_string().contains(&(max + 1).to_string()), "{err}");
    }
}

#[test]
fn blank_and_control_character_text_is_rejected_before_io() {
    for provider in Provider::ALL {
        for blank in ["", "   ", "\t\n"] {
            assert_invalid(
                &request(provider, "1.00").with_description(blank),
                "description",
            );
        }
        let err = assert_invalid(
            &request(provider, "1.00").with_description("Broken\u{0}screen"),
            "description",
        );
        assert!(err.to_string().contains("control character"), "{err}");
        let mut r = request(provider, "1.00");
        r.order_id = "ORD\u{7}1".into();
        assert_invalid(&r, "order_id");
    }
    for reference in ["", " ", "RF 1", "RF\u{0}1"] {
        let err = MerchantReference::new(reference).unwrap_err();
        assert_eq!(err.field(), Some("merchant_reference"), "{reference:?}");
    }
}

#[test]
fn every_problem_of_a_request_is_reported_together() {
    let mut r = request(Provider::OpenApp, "1.00").with_description("   ");
    r.order_id = "x".repeat(openapp_api::constraints::refund_order::shop_order_id::MAX_LENGTH + 1);
    r.provider_order_id = None;
    let err = r.validate().unwrap_err();
    let fields: Vec<&str> = err.problems().iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        ["description", "order_id", "provider_order_id"],
        "{err}"
    );
    assert_eq!(err.field(), Some("description"), "the kind names the first");
    let text = err.to_string();
    assert!(
        text.contains("also `order_id`") && text.contains("`provider_order_id`"),
        "{text}"
    );
    // One problem: the list holds just it.
    let err = request(Provider::Optty, "0.00").validate().unwrap_err();
    assert_eq!(err.problems().len(), 1, "{err}");
}

#[test]
fn line_items_must_sum_to_the_amount() {
    for provider in [Provider::AfterPay, Provider::OpenApp] {
        let code = currency_for(provider);
        // 5 x 12.00 + 1 x 0.01 = 60.01
        let items = vec![
            item("0001", 5, "12.00", "2.00", code),
            item("0002", 1, "0.01", "0.00", code),
        ];
        assert_valid(&request(provider, "60.01").with_line_items(items.clone()));
        let err = assert_invalid(
            &request(provider, "60.00").with_line_items(items),
            "line_items",
        );
        assert!(
            err.to_string().contains(&format!("{code} 60.01")),
            "names the sum: {err}"
        );
    }
}

#[test]
fn line_item_rules_name_the_item_and_field() {
    let p = Provider::AfterPay;
    let with = |items: Vec<LineItem>, amount: &str| request(p, amount).with_line_items(items);

    // Currency of the unit price and of the VAT.
    let mut wrong = item("0001", 1, "12.00", "2.00", "EUR");
    wrong.unit_price = money("12.00", "USD");
    assert_invalid(
        &with(vec![wrong], "12.00"),
        "line_items[0].unit_price.currency",
    );
    let mut wrong = item("0002", 1, "12.00", "2.00", "EUR");
    wrong.unit_vat = money("2.00", "USD");
    assert_invalid(
        &with(vec![item("0001", 1, "1.00", "0", "EUR"), wrong], "13.00"),
        "line_items[1].unit_vat.currency",
    );

    // Quantity at least 1.
    assert_invalid(
        &with(vec![item("0001", 0, "12.00", "2.00", "EUR")], "12.00"),
        "line_items[0].quantity",
    );

    // VAT no more than the gross price, neither negative.
    assert_invalid(
        &with(vec![item("0001", 1, "12.00", "12.01", "EUR")], "12.00"),
        "line_items[0].unit_vat",
    );
    assert_invalid(
        &with(vec![item("0001", 1, "12.00", "-0.01", "EUR")], "12.00"),
        "line_items[0].unit_vat",
    );
    assert_valid(&with(
        vec![item("0001", 1, "12.00", "12.00", "EUR")],
        "12.00",
    ));
    assert_invalid(
        &with(vec![item("0001", 1, "-12.00", "0", "EUR")], "12.00"),
        "line_items[0].unit_price",
    );

    // VAT rate within 0..=100.
    let mut rate = item("0001", 1, "12.00", "2.00", "EUR");
    rate.vat_percent = Decimal::from(101);
    assert_invalid(
        &with(vec![rate.clone()], "12.00"),
        "line_items[0].vat_percent",
    );
    rate.vat_percent = Decimal::NEGATIVE_ONE;
    assert_invalid(&with(vec![rate], "12.00"), "line_items[0].vat_percent");

    // Product id present.
    assert_invalid(
        &with(vec![item(" ", 1, "12.00", "2.00", "EUR")], "12.00"),
        "line_items[0].product_id",
    );
}

#[test]
fn line_total_and_net_price_are_exact() {
    let i = item("0001", 3, "0.10", "0.02", "EUR");
    assert_eq!(i.line_total().unwrap(), money("0.30", "EUR"));
    assert_eq!(i.net_unit_price().unwrap(), money("0.08", "EUR"));
    let k = item("k", 7, "1.234", "0.001", "KWD");
    assert_eq!(k.line_total().unwrap(), money("8.638", "KWD"));
    assert_eq!(k.net_unit_price().unwrap(), money("1.233", "KWD"));
    let mut mixed = item("m", 1, "1.00", "0.10", "EUR");
    mixed.unit_vat = money("0.10", "USD");
    assert_eq!(mixed.net_unit_price(), None);
}

// ---- provider rules --------------------------------------------------------

#[test]
fn providers_without_line_items_reject_them() {
    for provider in [Provider::Optty, Provider::Moyasar] {
        let code = currency_for(provider);
        let r = request(provider, "12.00")
            .with_line_items(vec![item("0001", 1, "12.00", "2.00", code)]);
        let err = assert_invalid(&r, "line_items");
        assert!(
            err.to_string().contains("does not accept line items"),
            "{err}"
        );
    }
}

#[test]
fn optty_takes_at_most_two_decimals() {
    let kwd = RefundRequest::new(
        Provider::Optty,
        "O-1",
        money("1.234", "KWD"),
        reference("R1"),
    );
    // The spec's multipleOf 0.01: a third decimal place is refused, the currency is not.
    assert_invalid(&kwd, "amount");
    let kwd_in_cents = RefundRequest::new(
        Provider::Optty,
        "O-1",
        money("1.230", "KWD"),
        reference("R1"),
    );
    assert_valid(&kwd_in_cents);
    let jpy = RefundRequest::new(Provider::Optty, "O-1", money("100", "JPY"), reference("R1"));
    assert_valid(&jpy);
}

#[test]
fn openapp_counts_hundredths_so_needs_exponent_two() {
    for (amount, code) in [("100", "JPY"), ("1.234", "KWD"), ("1", "KRW")] {
        let r = RefundRequest::new(
            Provider::OpenApp,
            "WS1",
            money(amount, code),
            reference("R1"),
        )
        .with_provider_order_id("OA1");
        assert_invalid(&r, "amount.currency");
    }
    assert_valid(&request(Provider::OpenApp, "19.99"));
}

#[test]
fn moyasar_caps_the_amount_at_its_spec_maximum() {
    let max = moyasar_api::constraints::refund_order::amount::MAXIMUM;
    let at = |minor: i64| {
        let mut r = request(Provider::Moyasar, "1.00");
        r.amount = Money::from_minor_units(minor, r.amount.currency());
        r
    };
    assert_valid(&at(max));
    let err = assert_invalid(&at(max + 1), "amount");
    assert!(err.to_string().contains(&max.to_string()), "{err}");
    // Any currency exponent: KWD minor units are exact too.
    let kwd = RefundRequest::new(
        Provider::Moyasar,
        "id",
        money("1.234", "KWD"),
        reference("R1"),
    );
    assert_valid(&kwd);
}

#[test]
fn afterpay_needs_a_capture_number() {
    let mut r = request(Provider::AfterPay, "10.00");
    r.capture_number = None;
    assert_invalid(&r, "capture_number");
    r.capture_number = Some(" ".into());
    assert_invalid(&r, "capture_number");
    let max = afterpay_api::constraints::refund_order::capture_number::MAX_LENGTH;
    r.capture_number = Some("9".repeat(max + 1));
    assert_invalid(&r, "capture_number");
    r.capture_number = Some("9".repeat(max));
    assert_valid(&r);
}

#[test]
fn afterpay_limits_items_and_product_ids() {
    use afterpay_api::constraints::refund_order::items;
    let cents = |n: usize| format!("{}.{:02}", n / 100, n % 100);
    let too_many = vec![item("0001", 1, "0.01", "0", "EUR"); items::MAX_ITEMS + 1];
    assert_invalid(
        &request(Provider::AfterPay, &cents(items::MAX_ITEMS + 1)).with_line_items(too_many),
        "line_items",
    );
    let most = vec![item("0001", 1, "0.01", "0", "EUR"); items::MAX_ITEMS];
    assert_valid(&request(Provider::AfterPay, &cents(items::MAX_ITEMS)).with_line_items(most));
    let long = "p".repeat(items::items::product_id::MAX_LENGTH + 1);
    assert_invalid(
        &request(Provider::AfterPay, "1.00")
            .with_line_items(vec![item(&long, 1, "1.00", "0", "EUR")]),
        "line_items[0].product_id",
    );
}

#[test]
fn openapp_needs_its_order_id_and_short_ids() {
    let mut r = request(Provider::OpenApp, "19.99");
    r.provider_order_id = None;
    assert_invalid(&r, "provider_order_id");
    r.provider_order_id = Some(String::new());
    assert_invalid(&r, "provider_order_id");

    let mut r = request(Provider::OpenApp, "19.99");
    use openapp_api::constraints::refund_order as body;
    r.order_id = "W".repeat(body::shop_order_id::MAX_LENGTH + 1);
    assert_invalid(&r, "order_id");
    r.order_id = "W".repeat(body::shop_order_id::MAX_LENGTH);
    assert_valid(&r);

    let long = "i".repeat(body::products::items::id::MAX_LENGTH + 1);
    assert_invalid(
        &request(Provider::OpenApp, "19.99")
            .with_line_items(vec![item(&long, 1, "19.99", "0", "PLN")]),
        "line_items[0].product_id",
    );
    assert_valid(
        &request(Provider::OpenApp, "19.99")
            .with_reason(RefundReason::Returned)
            .with_description("Returned without charger cables.")
            .with_line_items(vec![item("id123", 1, "19.99", "3.74", "PLN")]),
    );
}

#[test]
fn provider_specific_ids_are_rejected_elsewhere() {
    for provider in [Provider::Optty, Provider::Moyasar, Provider::OpenApp] {
        assert_invalid(
            &request(provider, "1.00").with_capture_number("000000001"),
            "capture_number",
        );
    }
    for provider in [Provider::Optty, Provider::Moyasar, Provider::AfterPay] {
        assert_invalid(
            &request(provider, "1.00").with_provider_order_id("OA1"),
            "provider_order_id",
        );
    }
}

#[test]
fn capabilities_state_the_documented_facts() {
    let optty = Provider::Optty.capabilities();
    assert!(optty.partial_refunds && !optty.line_items && !optty.reasons);
    assert!(optty.synchronous_result && optty.idempotent_retries);
    assert_eq!(
        optty.amount_multiple_of.map(|step| step.to_string()).as_deref(),
        Some(optty_api::constraints::refunds_controller_refund_order::refund_amount::amount::MULTIPLE_OF)
    );

    let afterpay = Provider::AfterPay.capabilities();
    assert!(afterpay.line_items && afterpay.partial_requires_line_items);
    assert!(afterpay.requires_capture_number && !afterpay.idempotent_retries);
    // The limits are the spec's (generated constraints), never restated by hand.
    use afterpay_api::constraints::refund_order as afterpay_body;
    assert_eq!(
        afterpay.max_capture_number_len,
        Some(afterpay_body::capture_number::MAX_LENGTH)
    );
    assert_eq!(
        afterpay.max_line_items,
        Some(afterpay_body::items::MAX_ITEMS)
    );

    let moyasar = Provider::Moyasar.capabilities();
    assert!(moyasar.partial_refunds && !moyasar.line_items && moyasar.synchronous_result);
    assert_eq!(
        moyasar.max_minor_units,
        Some(moyasar_api::constraints::refund_order::amount::MAXIMUM)
    );

    let openapp = Provider::OpenApp.capabilities();
    assert!(openapp.line_items && openapp.reasons && !openapp.synchronous_result);
    assert!(openapp.requires_provider_order_id);
    assert_eq!(
        openapp.max_description_len,
        Some(openapp_api::constraints::refund_order::notes::MAX_LENGTH)
    );
    // From OpenApp's JSON Schema (`caseId` maxLength), not restated here.
    assert_eq!(
        openapp.max_reference_len,
        openapp_api::constraints::refund_order::case_id::MAX_LENGTH
    );
    assert_eq!(openapp.currency_exponents, Some(&[2][..]));

    for provider in Provider::ALL {
        let caps = provider.capabilities();
        assert!(caps.max_reference_len <= MerchantReference::MAX_LEN);
        assert!(caps.max_description_len.unwrap_or(0) <= Capabilities::MAX_DESCRIPTION_LEN);
    }
}

// ---- merchant reference --------------------------------------------------

#[test]
fn merchant_reference_rules() {
    assert_eq!(reference("A.b_c:d-9").as_str(), "A.b_c:d-9");
    assert_eq!(
        reference(&"x".repeat(MerchantReference::MAX_LEN))
            .as_str()
            .len(),
        MerchantReference::MAX_LEN
    );
    for bad in [
        String::new(),
        "x".repeat(MerchantReference::MAX_LEN + 1),
        "has space".into(),
        "slash/".into(),
        "hash#".into(),
        "é".into(),
        "percent%20".into(),
        "query?x".into(),
    ] {
        let err = MerchantReference::new(bad.clone()).expect_err(&bad);
        assert_eq!(err.field(), Some("merchant_reference"), "{bad:?}: {err}");
    }
    let err = MerchantReference::new("a b").unwrap_err();
    assert!(
        err.to_string().contains("' '"),
        "names the character: {err}"
    );
}

#[test]
fn moyasar_transaction_id_is_a_stable_uuid_v5() {
    // python3 -c 'import uuid; ns=uuid.uuid5(uuid.NAMESPACE_URL,"urn:refunds-facade:moyasar:transaction_id"); print(ns, uuid.uuid5(ns,"RET-123434"))'
    // -> 672dda92-a6cb-567e-b652-c36fe1b59243 5f7fbafb-b5bc-55b6-ad60-a27c26393247
    assert_eq!(
        refunds::reference::MOYASAR_TRANSACTION_NAMESPACE,
        uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            b"urn:refunds-facade:moyasar:transaction_id"
        )
    );
    let id = reference("RET-123434").moyasar_transaction_id();
    assert_eq!(id.to_string(), "5f7fbafb-b5bc-55b6-ad60-a27c26393247");
    assert_eq!(id.get_version_num(), 5);
    assert_eq!(id.to_string().len(), 36);
    assert_eq!(reference("RET-123434").moyasar_transaction_id(), id);
    assert_ne!(reference("RET-123435").moyasar_transaction_id(), id);
}

// ---- errors --------------------------------------------------------------

/// The outcome table of `RefundError::is_retryable`: (kind, outcome, retryable where the
/// provider deduplicates, retryable on AfterPay).
#[test]
fn outcome_and_retryability_by_kind() {
    use refunds::Outcome::{Applied, NotApplied, Unknown};
    let table = [
        (
            ErrorKind::InvalidRequest {
                field: "amount".into(),
                reason: "x".into(),
            },
            NotApplied,
            false,
            false,
        ),
        (ErrorKind::Unauthorized, NotApplied, false, false),
        (ErrorKind::Forbidden, NotApplied, false, false),
        (ErrorKind::OrderNotFound, NotApplied, false, false),
        (ErrorKind::Duplicate, Applied, false, false),
        (
            ErrorKind::ExceedsRefundable { limit: None },
            NotApplied,
            false,
            false,
        ),
        (ErrorKind::Transient, NotApplied, true, true),
        (ErrorKind::InProgress, Unknown, true, false),
        (ErrorKind::ServerError, Unknown, true, false),
        (ErrorKind::Timeout, Unknown, true, false),
        (ErrorKind::Protocol, Unknown, true, false),
    ];
    for (kind, outcome, deduplicating, afterpay) in table {
        let err = RefundError::new(kind.clone());
        assert_eq!(err.outcome(), outcome, "{kind:?}");
        assert_eq!(err.outcome_unknown(), outcome == Unknown, "{kind:?}");
        // Without a provider nobody vouches for a duplicate key.
        assert_eq!(
            err.is_retryable(),
            outcome == NotApplied && deduplicating,
            "{kind:?}"
        );
        // As each provider's adapter marks its errors: with its room's duplicate-key capability.
        let from = |provider: Provider| {
            err.clone()
                .with_provider(provider)
                .with_deduplication(provider.capabilities().idempotent_retries)
        };
        for provider in [Provider::Optty, Provider::Moyasar, Provider::OpenApp] {
            assert_eq!(
                from(provider).is_retryable(),
                deduplicating,
                "{kind:?} {provider}"
            );
        }
        assert_eq!(
            from(Provider::AfterPay).is_retryable(),
            afterpay,
            "{kind:?} afterpay"
        );
        // A provider alone vouches for nothing: the adapter's mark is what makes it retryable.
        assert_eq!(
            err.clone().with_provider(Provider::Optty).is_retryable(),
            outcome == NotApplied && deduplicating,
            "{kind:?} unmarked"
        );
    }
    // An error raised before anything was sent says so, whatever its kind.
    let unsent = RefundError::new(ErrorKind::Protocol).with_outcome(NotApplied);
    assert!(!unsent.outcome_unknown());
}

#[test]
fn error_display_names_kind_field_provider_and_message() {
    let err = RefundError::new(ErrorKind::ExceedsRefundable {
        limit: Some(money("24.98", "AUD")),
    })
    .with_provider(Provider::Optty)
    .with_http_status(400)
    .with_provider_message("You can only refund amount up to AUD 24.98");
    assert_eq!(
        err.to_string(),
        "optty: amount exceeds the refundable amount (at most AUD 24.98) [not applied] (HTTP 400): You can only refund amount up to AUD 24.98"
    );
    assert_eq!(err.http_status(), Some(400));
    assert_eq!(
        err.provider_message(),
        Some("You can only refund amount up to AUD 24.98")
    );

    let err = RefundError::new(ErrorKind::Duplicate)
        .with_provider(Provider::OpenApp)
        .with_http_status(409)
        .with_provider_code("RefundExistsException");
    assert_eq!(
        err.to_string(),
        "openapp: duplicate: a refund with this merchant reference already exists [applied] (HTTP 409, RefundExistsException)"
    );
    assert_eq!(err.provider_code(), Some("RefundExistsException"));

    let err = RefundError::invalid("line_items[0].quantity", "must be at least 1");
    assert_eq!(
        err.to_string(),
        "invalid request: `line_items[0].quantity`: must be at least 1 [not applied]"
    );

    let err = RefundError::new(ErrorKind::InvalidRequest {
        field: "items".into(),
        reason: "rejected by provider".into(),
    })
    .with_provider(Provider::AfterPay)
    .with_http_status(400)
    .with_provider_messages(vec![
        refunds::ProviderMessage {
            code: Some("400.005".into()),
            message: "Invalid value".into(),
            field: Some("items[0].vatPercent".into()),
        },
        refunds::ProviderMessage {
            code: None,
            message: "Second message".into(),
            field: None,
        },
    ]);
    let text = err.to_string();
    assert!(
        text.contains("[400.005] Invalid value (field items[0].vatPercent); Second message"),
        "{text}"
    );
    assert_eq!(err.provider_messages().len(), 2);
}

#[test]
fn error_keeps_its_cause() {
    use std::error::Error as _;
    let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "read timed out");
    let err = RefundError::new(ErrorKind::Timeout)
        .with_provider(Provider::Moyasar)
        .caused_by(io);
    assert_eq!(err.source().unwrap().to_string(), "read timed out");
    assert!(format!("{err:?}").contains("read timed out"));
}

#[test]
fn refund_error_is_small() {
    assert!(std::mem::size_of::<RefundError>() <= std::mem::size_of::<usize>());
}

// ---- serde shapes ------------------------------------------------------------

#[test]
fn provider_names() {
    for (provider, name) in [
        (Provider::Optty, "optty"),
        (Provider::AfterPay, "afterpay"),
        (Provider::Moyasar, "moyasar"),
        (Provider::OpenApp, "openapp"),
    ] {
        assert_eq!(provider.as_str(), name);
        assert_eq!(provider.to_string(), name);
        assert_eq!(name.parse::<Provider>().unwrap(), provider);
        assert_eq!(serde_json::to_value(provider).unwrap(), json!(name));
    }
    assert_eq!(
        "paypal".parse::<Provider>().unwrap_err().field(),
        Some("provider")
    );
}

#[test]
fn request_json_round_trip() {
    let r = request(Provider::OpenApp, "19.99")
        .with_reason(RefundReason::Returned)
        .with_description("Returned without charger cables.")
        .with_line_items(vec![item("id123", 1, "19.99", "3.74", "PLN")]);
    let value = serde_json::to_value(&r).unwrap();
    assert_eq!(
        value,
        json!({
            "provider": "openapp",
            "order_id": "ORDER-1",
            "amount": {"amount": "19.99", "currency": "PLN"},
            "merchant_reference": "RET-123434",
            "reason": "returned",
            "description": "Returned without charger cables.",
            "line_items": [{
                "product_id": "id123",
                "description": "id123 description",
                "quantity": 1,
                "unit_price": {"amount": "19.99", "currency": "PLN"},
                "unit_vat": {"amount": "3.74", "currency": "PLN"},
                "vat_percent": "20"
            }],
            "provider_order_id": "OA12345678901234"
        })
    );
    assert_eq!(
        serde_json::from_value::<RefundRequest>(value.clone()).unwrap(),
        r
    );

    let mut bad = value;
    bad["merchant_reference"] = json!("has space");
    assert!(serde_json::from_value::<RefundRequest>(bad).is_err());
}

#[test]
fn folded_description() {
    let r = request(Provider::Optty, "1.00");
    assert_eq!(r.folded_description(), None);
    assert_eq!(
        r.clone()
            .with_reason(RefundReason::Warranty)
            .folded_description()
            .as_deref(),
        Some("Warranty")
    );
    assert_eq!(
        r.clone()
            .with_description("Broken")
            .folded_description()
            .as_deref(),
        Some("Broken")
    );
    assert_eq!(
        r.with_reason(RefundReason::Returned)
            .with_description("Box damaged")
            .folded_description()
            .as_deref(),
        Some("Returned: Box damaged")
    );
}

#[test]
fn refund_serializes_with_status_and_raw_payload() {
    let refund = Refund {
        provider: Provider::Moyasar,
        provider_refund_id: Some("f351a2a3-97c4-4f12-add3-80c1044091f5".into()),
        status: RefundStatus::Succeeded,
        amount: money("2623.46", "SAR"),
        refunded_total: Some(money("2623.46", "SAR")),
        captured_total: Some(money("2623.46", "SAR")),
        raw: refunds::RawAnswer::new(&br#"{"amount":262346}"#[..]),
    };
    let value = serde_json::to_value(&refund).unwrap();
    assert_eq!(value["status"], "succeeded");
    assert_eq!(value["amount"]["amount"], "2623.46");
    assert_eq!(value["raw"]["amount"], json!(262346));
    assert_eq!(serde_json::from_value::<Refund>(value).unwrap(), refund);
}

/// The values of a string enum schema (schemars writes documented variants as
/// `oneOf` of single-value enums).
fn enum_values(schema: &serde_json::Value) -> Vec<String> {
    schema["oneOf"]
        .as_array()
        .expect("oneOf")
        .iter()
        .flat_map(|variant| variant["enum"].as_array().expect("enum").clone())
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn json_schema_of_the_unified_model() {
    let schema = serde_json::to_value(schemars::schema_for!(RefundRequest)).unwrap();
    let definitions = schema["definitions"].as_object().unwrap();
    for name in [
        "Money",
        "Currency",
        "LineItem",
        "MerchantReference",
        "Provider",
        "RefundReason",
    ] {
        assert!(definitions.contains_key(name), "missing {name}");
    }
    assert_eq!(
        schema["definitions"]["MerchantReference"]["maxLength"],
        json!(MerchantReference::MAX_LEN)
    );
    assert_eq!(
        enum_values(&schema["definitions"]["Provider"]),
        Provider::ALL.map(Provider::as_str)
    );
    assert_eq!(
        schema["definitions"]["LineItem"]["properties"]["vat_percent"]["type"],
        "string"
    );
    let required = schema["required"].as_array().unwrap();
    for field in ["provider", "order_id", "amount", "merchant_reference"] {
        assert!(required.contains(&json!(field)), "{field} required");
    }
    let refund = serde_json::to_value(schemars::schema_for!(Refund)).unwrap();
    assert_eq!(
        enum_values(&refund["definitions"]["RefundStatus"]),
        ["succeeded", "pending", "failed"]
    );
}
