//! Exact decimal JSON numbers without serde_json's `arbitrary_precision`.
//!
//! [`JsonDecimal`] is a [`Decimal`] that serde_json reads and writes as the JSON number's own
//! text, through [`RawValue`]: `24.98` stays `24.98` and `10.00` stays `10.00`, and no `f64`
//! is ever involved. Unlike serde_json's `arbitrary_precision` feature (which cargo would turn
//! on for the whole application, changing how its untagged enums, internally tagged enums and
//! `#[serde(flatten)]` structs read numbers), this only touches the fields that use it.
//!
//! ```
//! use json_decimal::JsonDecimal;
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Amount {
//!     amount: JsonDecimal,
//!     #[serde(with = "json_decimal::number")]
//!     fee: rust_decimal::Decimal,
//! }
//!
//! let wire = r#"{"amount":1000000.01,"fee":0.10}"#;
//! let decoded: Amount = serde_json::from_str(wire)?;
//! assert_eq!(decoded.amount.0, rust_decimal::Decimal::new(100000001, 2));
//! assert_eq!(serde_json::to_string(&decoded)?, wire);
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! Exactness needs the JSON text: read with `serde_json::from_str`/`from_slice`/`from_reader`.
//! `serde_json::from_value` works too, but a [`serde_json::Value`] has already turned the
//! number into an `f64`, so it is only as exact as that `f64` was.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A decimal read and written as a JSON number's exact text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JsonDecimal(pub Decimal);

impl JsonDecimal {
    /// The decimal.
    pub fn get(self) -> Decimal {
        self.0
    }
}

impl From<Decimal> for JsonDecimal {
    fn from(value: Decimal) -> Self {
        JsonDecimal(value)
    }
}

impl From<JsonDecimal> for Decimal {
    fn from(value: JsonDecimal) -> Self {
        value.0
    }
}

impl fmt::Display for JsonDecimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Why a text is not an exact decimal JSON number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

impl FromStr for JsonDecimal {
    type Err = ParseError;

    /// Parses a JSON number literal (`-12.50`, `1e3`) exactly.
    fn from_str(text: &str) -> Result<Self, ParseError> {
        parse_number(text).map(JsonDecimal)
    }
}

/// A JSON number literal as an exact decimal; anything else (a string, `null`, too many
/// digits for a `Decimal`) is an error naming the text.
pub fn parse_number(text: &str) -> Result<Decimal, ParseError> {
    let text = text.trim();
    let is_number = text
        .strip_prefix('-')
        .unwrap_or(text)
        .starts_with(|c: char| c.is_ascii_digit());
    if !is_number {
        return Err(ParseError(format!("expected a JSON number, found {text}")));
    }
    let parsed = if text.contains(['e', 'E']) {
        Decimal::from_scientific(text)
    } else {
        Decimal::from_str_exact(text)
    };
    parsed.map_err(|err| ParseError(format!("{text} is not an exact decimal: {err}")))
}

impl Serialize for JsonDecimal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        number::serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for JsonDecimal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        number::deserialize(deserializer).map(JsonDecimal)
    }
}

/// A decimal that a spec declares as a string (`type: string, format: decimal`, as Optty's
/// `refundedAmount`) while servers also send it as a number (Optty's own example: `100`): read
/// exactly from a JSON string holding a decimal (`"100.50"`) or from a JSON number (`100`,
/// `1e2`, `100.000`), and written back in the form it was read in (a string when made from a
/// [`Decimal`]), so a decoded answer re-encodes as received. Equality is by value.
///
/// ```
/// use json_decimal::DecimalText;
///
/// let text: DecimalText = serde_json::from_str(r#""100.50""#)?;
/// let number: DecimalText = serde_json::from_str("100.50")?;
/// assert_eq!(text, number);
/// assert_eq!(serde_json::to_string(&number)?, "100.50");
/// assert_eq!(serde_json::to_string(&DecimalText::from(number.get()))?, r#""100.50""#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct DecimalText {
    value: Decimal,
    /// Read from a JSON number rather than a string.
    was_number: bool,
}

impl DecimalText {
    /// The decimal.
    pub fn get(self) -> Decimal {
        self.value
    }
}

impl From<Decimal> for DecimalText {
    fn from(value: Decimal) -> Self {
        DecimalText {
            value,
            was_number: false,
        }
    }
}

impl PartialEq for DecimalText {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Eq for DecimalText {}

impl std::hash::Hash for DecimalText {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

impl fmt::Display for DecimalText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.value, f)
    }
}

impl FromStr for DecimalText {
    type Err = ParseError;

    /// Parses a decimal's text (`-12.50`, `1e3`) exactly.
    fn from_str(text: &str) -> Result<Self, ParseError> {
        parse_number(text).map(DecimalText::from)
    }
}

impl Serialize for DecimalText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.was_number {
            number::serialize(&self.value, serializer)
        } else {
            serializer.collect_str(&self.value)
        }
    }
}

impl<'de> Deserialize<'de> for DecimalText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let text = raw.get();
        let (value, was_number) = match serde_json::from_str::<String>(text) {
            Ok(inner) => (parse_number(&inner), false),
            Err(_) => (parse_number(text), true),
        };
        let value = value.map_err(serde::de::Error::custom)?;
        Ok(DecimalText { value, was_number })
    }
}

/// An integer that servers may write as any JSON number with an integer value (`100`,
/// `100.000`, `1e2`), read exactly; a fraction (`100.5`) or a value outside `i64` is an error.
/// Written as a plain integer. For `type: integer` amounts in minor units (Moyasar).
///
/// ```
/// use json_decimal::JsonInteger;
///
/// for text in ["100", "100.000", "1e2", "1.00E+2"] {
///     assert_eq!(serde_json::from_str::<JsonInteger>(text)?.get(), 100);
/// }
/// assert!(serde_json::from_str::<JsonInteger>("100.5").is_err());
/// assert_eq!(serde_json::to_string(&JsonInteger(100))?, "100");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JsonInteger(pub i64);

impl JsonInteger {
    /// The integer.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl From<i64> for JsonInteger {
    fn from(value: i64) -> Self {
        JsonInteger(value)
    }
}

impl fmt::Display for JsonInteger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for JsonInteger {
    type Err = ParseError;

    /// Parses a JSON number literal with an integer value exactly.
    fn from_str(text: &str) -> Result<Self, ParseError> {
        // The common form, plain digits with an optional minus (`1000`, `-3`), read as an `i64`
        // directly; any other form (`1000.00`, `1e3`), and digits beyond `i64`, as a decimal.
        let trimmed = text.trim();
        let digits = trimmed.strip_prefix('-').unwrap_or(trimmed);
        if !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && let Ok(value) = trimmed.parse::<i64>()
        {
            return Ok(JsonInteger(value));
        }
        let value = parse_number(text)?;
        if !value.fract().is_zero() {
            return Err(ParseError(format!("{text} is not an integer")));
        }
        i64::try_from(value)
            .map(JsonInteger)
            .map_err(|_| ParseError(format!("{text} is outside the 64-bit integer range")))
    }
}

impl Serialize for JsonInteger {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for JsonInteger {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        raw.get().parse().map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "json_decimal::number")]` for a [`Decimal`] field.
pub mod number {
    use super::*;

    /// Writes the decimal's text as a JSON number.
    pub fn serialize<S: Serializer>(value: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
        RawValue::from_string(value.to_string())
            .map_err(serde::ser::Error::custom)?
            .serialize(serializer)
    }

    /// Reads a JSON number's text exactly.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        parse_number(raw.get()).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "json_decimal::option_number")]` for an `Option<Decimal>` field (`null`
/// or absent is `None`; add `#[serde(default)]` for absent).
pub mod option_number {
    use super::*;

    /// Writes `null` or the decimal's text as a JSON number.
    pub fn serialize<S: Serializer>(
        value: &Option<Decimal>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => number::serialize(value, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Reads `null` or a JSON number's text exactly.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Decimal>, D::Error> {
        Option::<JsonDecimal>::deserialize(deserializer).map(|value| value.map(JsonDecimal::get))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_text_both_ways() {
        for text in [
            "0.1",
            "0.29",
            "24.98",
            "1000000.01",
            "100",
            "10.00",
            "-3.50",
            "0",
        ] {
            let decoded: JsonDecimal = serde_json::from_str(text).unwrap();
            assert_eq!(decoded.to_string(), text);
            assert_eq!(serde_json::to_string(&decoded).unwrap(), text);
        }
        // More digits than an f64 holds.
        let long: JsonDecimal = serde_json::from_str("12345678901234567.89").unwrap();
        assert_eq!(
            long.0,
            Decimal::from_str_exact("12345678901234567.89").unwrap()
        );
        let scientific: JsonDecimal = serde_json::from_str("1.5e2").unwrap();
        assert_eq!(scientific.0, Decimal::new(150, 0));
    }

    #[test]
    fn anything_but_a_number_is_refused() {
        for text in [r#""24.98""#, "null", "true", "[1]", r#"{"a":1}"#] {
            let err = serde_json::from_str::<JsonDecimal>(text).unwrap_err();
            assert!(
                err.to_string().contains("expected a JSON number"),
                "{text}: {err}"
            );
        }
        let err = serde_json::from_value::<JsonDecimal>(serde_json::json!("24.98")).unwrap_err();
        assert!(err.to_string().contains("expected a JSON number"), "{err}");
    }

    #[test]
    fn decimal_text_reads_strings_and_numbers_exactly() {
        for text in [r#""100.50""#, "100.50", r#""1.005e2""#, "1.0050e2"] {
            let read: DecimalText = serde_json::from_str(text).unwrap();
            assert_eq!(read.get(), Decimal::new(10050, 2), "{text}");
        }
        for text in [r#""""#, r#""abc""#, "null", r#""1,5""#] {
            assert!(serde_json::from_str::<DecimalText>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn integers_in_any_number_form() {
        for (text, value) in [
            ("100", 100),
            ("100.000", 100),
            ("1e2", 100),
            ("1E+2", 100),
            ("-3", -3),
            ("9223372036854775807", i64::MAX),
        ] {
            let read: JsonInteger = serde_json::from_str(text).unwrap();
            assert_eq!(read.get(), value, "{text}");
        }
        for text in ["100.5", "1e-2", "9223372036854775808", r#""100""#, "null"] {
            assert!(serde_json::from_str::<JsonInteger>(text).is_err(), "{text}");
        }
        // The same through `FromStr`, plain digits included (read without a decimal).
        for (text, value) in [
            ("0", 0),
            ("-0", 0),
            (" 42 ", 42),
            ("-9223372036854775808", i64::MIN),
        ] {
            assert_eq!(
                text.parse::<JsonInteger>(),
                Ok(JsonInteger(value)),
                "{text}"
            );
        }
        for text in [
            "",
            "-",
            "+1",
            "9223372036854775808",
            "-9223372036854775809",
            "12a",
        ] {
            assert!(text.parse::<JsonInteger>().is_err(), "{text}");
        }
        assert_eq!(
            "9223372036854775808"
                .parse::<JsonInteger>()
                .unwrap_err()
                .to_string(),
            "9223372036854775808 is outside the 64-bit integer range"
        );
    }

    #[test]
    fn optional_numbers() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Totals {
            #[serde(
                default,
                with = "option_number",
                skip_serializing_if = "Option::is_none"
            )]
            refunded: Option<Decimal>,
        }
        let some: Totals = serde_json::from_str(r#"{"refunded":0.30}"#).unwrap();
        assert_eq!(some.refunded, Some(Decimal::new(30, 2)));
        assert_eq!(
            serde_json::to_string(&some).unwrap(),
            r#"{"refunded":0.30}"#
        );
        let none: Totals = serde_json::from_str(r#"{"refunded":null}"#).unwrap();
        assert_eq!(none.refunded, None);
        let absent: Totals = serde_json::from_str("{}").unwrap();
        assert_eq!(absent.refunded, None);
    }
}
