//! Reading loosely typed JSON request bodies field by field, so every
//! provider can answer bad input in its own words instead of serde's.

use rust_decimal::Decimal;
use serde_json::Value;

/// A JSON number read exactly as written (`24.98` stays `24.98`). `None`
/// for anything that is not a number or does not fit a `Decimal`.
pub fn decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(_) => serde_json::from_value(v.clone()).ok(),
        _ => None,
    }
}

/// A JSON number that is an integer as written (`100`, not `100.0`).
pub fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// Where a byte offset lies as a (1-based line, 1-based column) pair, and
/// back: serde_json reports positions as line/column, JavaScript as offset.
pub fn offset_of(body: &[u8], line: usize, column: usize) -> usize {
    let mut offset = 0;
    for _ in 1..line {
        match body[offset..].iter().position(|&b| b == b'\n') {
            Some(i) => offset += i + 1,
            None => return body.len(),
        }
    }
    (offset + column.saturating_sub(1)).min(body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_exactly() {
        let v: Value = serde_json::from_str(r#"{"a":24.98,"b":100,"c":1e2,"d":"1"}"#).unwrap();
        assert_eq!(decimal(&v["a"]).unwrap().to_string(), "24.98");
        assert_eq!(decimal(&v["b"]).unwrap().to_string(), "100");
        assert!(decimal(&v["d"]).is_none());
        assert_eq!(integer(&v["b"]), Some(100));
        assert_eq!(integer(&v["a"]), None);
        assert_eq!(offset_of(b"ab\ncd", 2, 2), 4);
    }
}
