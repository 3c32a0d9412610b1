//! Decimal major-unit amounts keep their exact wire text through the generated types:
//! decode -> encode never goes through f64.

const TRICKY: &[&str] = &["0.1", "0.29", "24.98", "1000000.01", "100", "10.00"];

#[test]
fn optty_refund_amount_text_survives_roundtrip() {
    for amount in TRICKY {
        let wire = format!(r#"{{"amount":{amount},"currency":"AUD"}}"#);
        let decoded: optty_api::types::OrderRefundAmount = serde_json::from_str(&wire).unwrap();
        assert_eq!(serde_json::to_string(&decoded).unwrap(), wire);
    }
}

#[test]
fn optty_refunded_amount_text_survives_roundtrip() {
    for amount in TRICKY {
        let wire = format!(
            r#"{{"bnplProvider":"KLARNA_AU","bnplRefundId":"x","description":{{}},"refundDate":"d","refundReference":"r","refundStatus":"SUCCESSFUL","refundedAmount":{amount}}}"#
        );
        let decoded: optty_api::types::RefundResponse = serde_json::from_str(&wire).unwrap();
        assert_eq!(serde_json::to_string(&decoded).unwrap(), wire);
    }
}

#[test]
fn afterpay_item_and_totals_text_survive_roundtrip() {
    for amount in TRICKY {
        let item = format!(
            r#"{{"description":"d","grossUnitPrice":{amount},"netUnitPrice":{amount},"productId":"p","quantity":1,"vatAmount":{amount},"vatPercent":{amount}}}"#
        );
        let decoded: afterpay_api::types::RefundOrderItem = serde_json::from_str(&item).unwrap();
        assert_eq!(serde_json::to_string(&decoded).unwrap(), item);

        let totals = format!(
            r#"{{"refundNumbers":["1"],"totalAuthorizedAmount":{amount},"totalCapturedAmount":{amount}}}"#
        );
        let decoded: afterpay_api::types::RefundOrderResponse =
            serde_json::from_str(&totals).unwrap();
        assert_eq!(serde_json::to_string(&decoded).unwrap(), totals);
    }
}

#[test]
fn decoded_amounts_are_exact_decimals() {
    let decoded: optty_api::types::OrderRefundAmount =
        serde_json::from_str(r#"{"amount":0.29,"currency":"AUD"}"#).unwrap();
    // 0.29 as f64 is 0.28999999999999998002; the decimal is exactly 29 hundredths.
    assert_eq!(decoded.amount.get(), rust_decimal::Decimal::new(29, 2));
}
