//! Reading loosely typed JSON request bodies field by field, so every
//! provider can answer bad input in its own words instead of serde's.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

/// A JSON object of a request body, keys sorted (as serde_json's default `Map`).
pub type Map<K, V> = BTreeMap<K, V>;

/// A request body as JSON, like `serde_json::Value` but with every number kept as the text the
/// client wrote, so amounts are read exactly without serde_json's `arbitrary_precision` (which
/// would change number handling for every crate built with the sandbox).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// `null`.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as written.
    Number(Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object.
    Object(Map<String, Value>),
}

/// A JSON number's literal text.
#[derive(Debug, Clone, PartialEq)]
pub struct Number(String);

impl Number {
    /// The number as an `i64`, if it is written as an integer.
    pub fn as_i64(&self) -> Option<i64> {
        self.0.parse().ok()
    }
}

impl Value {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object().and_then(|object| object.get(key))
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The object, if this is one.
    pub fn as_object(&self) -> Option<&Map<String, Value>> {
        match self {
            Value::Object(object) => Some(object),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as a `serde_json::Value`, for schema validation: numbers become `i64`/`u64`
    /// or `f64` as serde_json reads them (not exact: see [`crate::schema`]), and a magnitude
    /// beyond `f64` (`1e400`, which serde_json refuses) the largest finite `f64` of its sign, so
    /// the schema's types and bounds still judge it.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as Json;
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Number(serde_json::from_str(&n.0).unwrap_or_else(|_| {
                let max = if n.0.starts_with('-') {
                    f64::MIN
                } else {
                    f64::MAX
                };
                serde_json::Number::from_f64(max).unwrap_or_else(|| 0.into())
            })),
            Value::String(s) => Json::String(s.clone()),
            Value::Array(items) => Json::Array(items.iter().map(Value::to_json).collect()),
            Value::Object(object) => Json::Object(
                object
                    .iter()
                    .map(|(key, value)| (key.clone(), value.to_json()))
                    .collect(),
            ),
        }
    }
}

impl std::ops::Index<&str> for Value {
    type Output = Value;

    fn index(&self, key: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.get(key).unwrap_or(&NULL)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Number(n) => RawValue::from_string(n.0.clone())
                .map_err(serde::ser::Error::custom)?
                .serialize(serializer),
            Value::String(s) => serializer.serialize_str(s),
            Value::Array(items) => items.serialize(serializer),
            Value::Object(object) => object.serialize(serializer),
        }
    }
}

/// Parses a request body: serde_json's syntax and errors, numbers kept as written.
pub fn from_slice(body: &[u8]) -> Result<Value, serde_json::Error> {
    let raw: Box<RawValue> = serde_json::from_slice(body)?;
    from_raw(&raw)
}

/// Turns one already-validated JSON text into a [`Value`], one level at a time.
fn from_raw(raw: &RawValue) -> Result<Value, serde_json::Error> {
    let text = raw.get();
    Ok(match text.as_bytes().first() {
        Some(b'{') => Value::Object(
            serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(text)?
                .into_iter()
                .map(|(key, value)| from_raw(&value).map(|value| (key, value)))
                .collect::<Result<_, _>>()?,
        ),
        Some(b'[') => Value::Array(
            serde_json::from_str::<Vec<Box<RawValue>>>(text)?
                .iter()
                .map(|value| from_raw(value))
                .collect::<Result<_, _>>()?,
        ),
        Some(b'"') => Value::String(serde_json::from_str(text)?),
        Some(b't' | b'f') => Value::Bool(serde_json::from_str(text)?),
        Some(b'n') => Value::Null,
        _ => Value::Number(Number(text.to_owned())),
    })
}

/// A JSON number read exactly as written (`24.98` stays `24.98`). `None`
/// for anything that is not a number or does not fit a `Decimal`.
pub fn decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => json_decimal::parse_number(&n.0).ok(),
        _ => None,
    }
}

/// A JSON number with its sign turned, exactly as written otherwise (`12.50` becomes `-12.50`,
/// `-3` becomes `3`); anything that is not a number is returned as it is.
pub fn negated(v: &Value) -> Value {
    match v {
        Value::Number(Number(text)) => Value::Number(Number(match text.strip_prefix('-') {
            Some(positive) => positive.to_owned(),
            None => format!("-{text}"),
        })),
        other => other.clone(),
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
        let v =
            from_slice(br#"{"a":24.98,"b":100,"c":1e2,"d":"1","e":12345678901234567.89}"#).unwrap();
        assert_eq!(decimal(&v["a"]).unwrap().to_string(), "24.98");
        assert_eq!(decimal(&v["b"]).unwrap().to_string(), "100");
        assert!(decimal(&v["d"]).is_none());
        assert_eq!(integer(&v["b"]), Some(100));
        assert_eq!(integer(&v["a"]), None);
        assert_eq!(serde_json::to_string(&negated(&v["a"])).unwrap(), "-24.98");
        assert_eq!(
            serde_json::to_string(&negated(&negated(&v["c"]))).unwrap(),
            "1e2"
        );
        assert_eq!(negated(&v["d"]), v["d"]);
        assert_eq!(decimal(&v["c"]).unwrap().to_string(), "100");
        assert_eq!(
            decimal(&v["e"]).unwrap().to_string(),
            "12345678901234567.89"
        );
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"a":24.98,"b":100,"c":1e2,"d":"1","e":12345678901234567.89}"#
        );
        assert!(from_slice(b"{\"a\":").is_err());
        let huge = from_slice(br#"[1e400,-1e400,100,1.5]"#).unwrap().to_json();
        assert_eq!(huge, serde_json::json!([f64::MAX, f64::MIN, 100, 1.5]));
        assert_eq!(offset_of(b"ab\ncd", 2, 2), 4);
    }
}
