//! The fingerprint of a refund request: SHA-256 of its canonical JSON.
//!
//! A merchant reference names one refund. When a call arrives with a reference the journal
//! already holds, the fingerprint tells whether it is the same refund (answer from the record,
//! or carry on with it) or a different one misusing the reference (refused before any I/O).

use refunds::RefundRequest;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The canonical JSON of `request`: the facade's serde form of [`RefundRequest`] (provider,
/// order id, amount and currency, merchant reference, reason, description, line items, capture
/// number, provider order id), written with object keys sorted, no whitespace, and every line
/// item's `vat_percent` normalized (`20.0` and `20` are the same rate), so that two requests
/// the facade considers equal have the same text. Amounts are already canonical: [`Money`]
/// holds them at the currency's scale.
///
/// It holds no secrets: a [`RefundRequest`] carries none (credentials live in the client's
/// configuration).
///
/// [`Money`]: refunds::Money
pub fn canonical_json(request: &RefundRequest) -> String {
    let mut request = request.clone();
    for item in &mut request.line_items {
        item.vat_percent = item.vat_percent.normalize();
    }
    let value = serde_json::to_value(&request).unwrap_or_else(|e| {
        // Serializing plain data to a `Value` cannot fail; say so loudly if it ever does.
        panic!("a RefundRequest always serializes to JSON: {e}")
    });
    let mut out = String::with_capacity(256);
    write_canonical(&value, &mut out);
    out
}

/// The request's fingerprint: the lower-case hex SHA-256 of [`canonical_json`].
///
/// ```
/// use refunds::{MerchantReference, Money, Provider, RefundRequest};
///
/// let request = RefundRequest::new(
///     Provider::Moyasar,
///     "ord-1",
///     Money::parse("26.00", "SAR")?,
///     MerchantReference::new("RET-1")?,
/// );
/// let fingerprint = refunds_journal::fingerprint(&request);
/// assert_eq!(fingerprint.len(), 64);
/// // Another amount is another refund.
/// let other = RefundRequest { amount: Money::parse("27.00", "SAR")?, ..request.clone() };
/// assert_ne!(refunds_journal::fingerprint(&other), fingerprint);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn fingerprint(request: &RefundRequest) -> String {
    hex(&Sha256::digest(canonical_json(request).as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Writes `value` with object keys in byte order, whatever map `serde_json` was built with.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use refunds::{LineItem, MerchantReference, Money, Provider, RefundReason};

    fn request() -> RefundRequest {
        let amount = Money::parse("20.00", "EUR").unwrap();
        RefundRequest::new(
            Provider::AfterPay,
            "ORD-1",
            amount,
            MerchantReference::new("RF-1").unwrap(),
        )
        .with_capture_number("000000001")
        .with_reason(RefundReason::Returned)
        .with_description("two mugs")
        .with_line_items(vec![LineItem {
            product_id: "MUG".into(),
            description: "Mug".into(),
            quantity: 2,
            unit_price: Money::parse("10.00", "EUR").unwrap(),
            unit_vat: Money::parse("1.60", "EUR").unwrap(),
            vat_percent: "19".parse().unwrap(),
        }])
    }

    #[test]
    fn canonical_json_sorts_keys_and_has_no_whitespace() {
        let json = canonical_json(&request());
        assert_eq!(
            json,
            r#"{"amount":{"amount":"20.00","currency":"EUR"},"capture_number":"000000001","description":"two mugs","line_items":[{"description":"Mug","product_id":"MUG","quantity":2,"unit_price":{"amount":"10.00","currency":"EUR"},"unit_vat":{"amount":"1.60","currency":"EUR"},"vat_percent":"19"}],"merchant_reference":"RF-1","order_id":"ORD-1","provider":"afterpay","reason":"returned"}"#
        );
    }

    #[test]
    fn equal_requests_have_equal_fingerprints_and_any_change_shows() {
        let base = request();
        let mut same_rate = base.clone();
        same_rate.line_items[0].vat_percent = "19.00".parse().unwrap();
        assert_eq!(same_rate, base, "the facade considers them equal");
        assert_eq!(fingerprint(&same_rate), fingerprint(&base));

        let changes: Vec<(&str, RefundRequest)> = vec![
            (
                "order",
                RefundRequest {
                    order_id: "ORD-2".into(),
                    ..base.clone()
                },
            ),
            ("description", base.clone().with_description("three mugs")),
            ("reason", base.clone().with_reason(RefundReason::Other)),
            ("capture", base.clone().with_capture_number("000000002")),
            ("items", {
                let mut r = base.clone();
                r.line_items[0].quantity = 3;
                r
            }),
            (
                "amount",
                RefundRequest {
                    amount: Money::parse("20.01", "EUR").unwrap(),
                    ..base.clone()
                },
            ),
        ];
        for (what, changed) in changes {
            assert_ne!(fingerprint(&changed), fingerprint(&base), "{what}");
        }
        assert_eq!(
            fingerprint(&base),
            hex(&Sha256::digest(canonical_json(&base).as_bytes()))
        );
    }
}
