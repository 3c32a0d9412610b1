//! Moyasar: unified model <-> `moyasar_api` wire types. Pure: no I/O.
//!
//! | unified | Moyasar |
//! |---|---|
//! | `order_id` | path `id` |
//! | `amount` | `amount` in integer minor units (1..=100000000) |
//! | `merchant_reference` | `transaction_id`: UUID v5 of the reference, so every retry carries the same idempotency key |
//! | `reason`, `description` | no field (not sent) |
//!
//! The answer is the whole order; this refund is the transaction of type `refund` whose `id` is
//! our `transaction_id` (a capture or any other transaction with that id is not it), and its
//! `status` is the refund's status.
//!
//! # Reading the order in one pass
//!
//! The order lists every transaction it ever had, so its answer grows with each refund (about
//! 360 bytes a refund: an order with 3,000 earlier refunds answers about 1 MB). The mapping reads
//! it once, straight from the answer's bytes (`OrderSeed`): the order's `currency`,
//! `refunded_amount` and `captured_amount`, and of each transaction in turn its `id`, `type`,
//! `status`, `amount`, `created_at` and `message`, borrowed from the bytes (a string is copied
//! only when it holds an escape), keeping the one transaction that is ours. Nothing else of the
//! order is built: every other field is checked for JSON syntax only (the body must still be one
//! JSON object and nothing after it), so what the mapping costs stays close to scanning the body,
//! and its memory does not grow with the order beyond the body itself. The fields it reads keep
//! the generated types' names and rules: amounts read exactly as [`JsonInteger`] reads them
//! (`1000`, `1000.00`, `1e3`; a fraction, a string or a number outside `i64` is refused), text as
//! strings or `null`. `tests/it/moyasar_order.rs` holds this reading to the one it replaced (the
//! whole order decoded into `moyasar_api::types::Order`) on generated orders, so a renamed or
//! retyped field in the spec fails there.

use std::borrow::Cow;
use std::fmt;
use std::num::NonZeroU64;
use std::time::SystemTime;

use json_decimal::JsonInteger;
use moyasar_api::types::RefundRequest as WireRefund;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::answer::Answer;
use crate::error::{ErrorKind, RefundError};
use crate::lookup::{Finding, Lookup, RecordedRefund};
use crate::model::{Provider, Refund, RefundRequest, RefundStatus};
use crate::money::{Currency, Money};
use crate::providers::error_body::ErrorBody;
use crate::providers::mapping::{
    answer_error, decode_seed, raw, read_error, read_failed, refusal_kind, undocumented,
    with_body_text,
};

const PROVIDER: Provider = Provider::Moyasar;

/// Moyasar's answer to a retry that arrives while the first attempt is still running, as its
/// refund page shows it (400 `{"message": "Initial request is still processing."}`). It is read
/// by [`is_still_processing`]: in any case, with or without the period, in any text of the body.
pub const STILL_PROCESSING: &str = "Initial request is still processing.";

/// Whether `text` says the first attempt is still running: [`STILL_PROCESSING`] anywhere in it,
/// compared without case, surrounding punctuation or repeated spaces. Reading a real refusal as
/// in progress costs one more retry with the same `transaction_id`, which gets the real answer;
/// reading "still processing" as a refusal invites a new reference and a second refund.
pub fn is_still_processing(text: &str) -> bool {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|word| word.to_lowercase())
        .collect();
    words
        .join(" ")
        .contains("initial request is still processing")
}

/// The wire body of a refund. The request must have passed [`RefundRequest::validate`].
pub fn refund_body(request: &RefundRequest) -> Result<WireRefund, RefundError> {
    let minor = request
        .amount
        .to_minor_units()
        .map_err(|err| RefundError::invalid("amount", err.to_string()).with_provider(PROVIDER))?;
    let amount = u64::try_from(minor)
        .ok()
        .and_then(NonZeroU64::new)
        .ok_or_else(|| {
            RefundError::invalid("amount", "must be positive").with_provider(PROVIDER)
        })?;
    Ok(WireRefund {
        amount,
        transaction_id: Some(request.merchant_reference.moyasar_transaction_id()),
    })
}

/// Maps any answer from its status, headers and body bytes: the one path from Moyasar's bytes
/// to our result.
///
/// | status | body | result | outcome |
/// |---|---|---|---|
/// | 2xx | the order, with a transaction of `type` `refund` whose `id` is our `transaction_id` | `Ok`, status from that transaction (below) | applied |
/// | 2xx | the order without such a transaction (none with our id, or ours is a `capture` or another type) | [`ErrorKind::Protocol`], not retryable (a retry replays the same order) | unknown |
/// | 2xx | not an order | [`ErrorKind::Protocol`] | unknown |
/// | any 4xx | "Initial request is still processing" in any case, with or without the period, in any text ([`is_still_processing`]) | [`ErrorKind::InProgress`], retryable with the same `transaction_id` | unknown |
/// | 400, 422 | `{message, errors}` with `errors` an object of fields, `null`, absent or an array; or HTML, text, empty | [`ErrorKind::InvalidRequest`] naming the first field Moyasar names (else `request`), `message` and every field's text kept | not applied |
/// | 401, 403, 404 | any | `Unauthorized`, `Forbidden`, `OrderNotFound`, `message` kept | not applied |
/// | other 4xx | any | by status (`providers::kind_for_status`): 408/429 `Transient`, 409/425 `Protocol` (unknown), others `InvalidRequest` | not applied but 409/425 |
/// | 5xx | any | `ServerError` | unknown |
///
/// No 400 is [`ErrorKind::ExceedsRefundable`]: Moyasar documents no wording for a refund beyond
/// what is left (its refund page shows only "Initial request is still processing." for 400), so
/// an over-refund is an [`ErrorKind::InvalidRequest`] like any other 400 (still not applied),
/// never guessed from a word such as "exceed" or from the sandbox's own message.
///
/// The refund transaction's documented `status` values
/// (<https://mpg-docs.mysr.dev/api/orders/show>):
///
/// | `status` | [`RefundStatus`] | why |
/// |---|---|---|
/// | `approved` | `Succeeded` | the refund went through; the order's `refunded_amount` counts it |
/// | `failed` | `Failed` | refused by the acquirer: final, nothing refunded |
/// | `initiated` | `Pending` | created, not yet answered |
/// | `timeout` | `Pending` | the acquirer did not answer in time: the docs do not say whether it turns final later, so it is not final; read the order back (`GET /v1/orders/:id`) to settle it, never re-send under a new reference |
/// | `system_error` | `Pending` | an error inside Moyasar while the refund ran: as `timeout`, not documented as final, and a refund that may yet be applied must not be re-sent as a new one |
/// | anything else | `Pending` | the transaction exists, so the refund is not lost; it is not known to be final |
pub fn refund_result(request: &RefundRequest, answer: &Answer) -> Result<Refund, RefundError> {
    read_answer(request, answer).map_err(|error| error.with_deduplication(super::DEDUPLICATES))
}

fn read_answer(request: &RefundRequest, answer: &Answer) -> Result<Refund, RefundError> {
    match answer.status {
        200..=299 => refund_success(request, answer),
        400..=499 => Err(refund_error(answer)),
        _ => Err(undocumented(PROVIDER, answer)),
    }
}

fn protocol(answer: &Answer, message: String) -> RefundError {
    answer_error(PROVIDER, answer, ErrorKind::Protocol).with_provider_message(message)
}

/// What a refund transaction's `status` says (the table of [`refund_result`]).
pub fn transaction_status(status: &str) -> RefundStatus {
    match status.trim().to_ascii_lowercase().as_str() {
        "approved" => RefundStatus::Succeeded,
        "failed" => RefundStatus::Failed,
        // "initiated", "timeout", "system_error", and any status Moyasar adds.
        _ => RefundStatus::Pending,
    }
}

/// The order's refund transaction for this request: of type `refund`, with our id.
fn refund_success(request: &RefundRequest, answer: &Answer) -> Result<Refund, RefundError> {
    let mut id = uuid::Uuid::encode_buffer();
    let transaction_id = request
        .merchant_reference
        .moyasar_transaction_id()
        .hyphenated()
        .encode_lower(&mut id);
    let order = decode_seed(PROVIDER, answer, OrderSeed::exact(transaction_id))?;
    let Some(transaction) = order.ours else {
        // Moyasar accepted the call, so the refund may well exist; a retry would replay
        // this same order, so only reading the order can settle it.
        let message = match order.first_with_our_id {
            Some(kind) => format!(
                "the order lists {transaction_id} as a {} transaction, not a refund",
                kind.as_deref().unwrap_or("untyped")
            ),
            None => format!("the order does not list the refund transaction {transaction_id}"),
        };
        return Err(protocol(answer, message).with_retry_futile());
    };
    let status = transaction_status(transaction.status.as_deref().unwrap_or_default());
    let currency = order_currency(request, answer, order.currency.as_deref())?;
    let minor =
        |value: Option<Minor>| value.map(|minor| Money::from_minor_units(minor.0, currency));
    Ok(Refund {
        provider: PROVIDER,
        provider_refund_id: transaction.id.map(Text::into_string),
        status,
        amount: minor(transaction.amount).unwrap_or(request.amount),
        refunded_total: minor(order.refunded_amount),
        captured_total: minor(order.captured_amount),
        raw: raw(answer),
    })
}

/// Maps Retrieve Order's answer (`GET /v1/orders/{id}`): the one path from its bytes to a
/// [`Lookup`].
///
/// | status | body | result |
/// |---|---|---|
/// | 2xx | the order, with a transaction of `type` `refund` whose `id` is our `transaction_id` | [`Finding::Found`], status by [`transaction_status`], amount in the order's currency |
/// | 2xx | the order without one (none with our id, or ours is not a refund) | [`Finding::Absent`] |
/// | 2xx | not an order | [`ErrorKind::Protocol`] |
/// | other | any | by status (as a refund answer of that status, outcome unknown; Moyasar documents 401 and 403) |
///
/// `known_refund_id` is not needed: our refund is found by the same rule as in the refund's
/// answer, its `transaction_id` as the refund transaction's `id` (here with surrounding spaces
/// ignored). The public pages do not say that Moyasar echoes it there; the refund example's
/// transaction `id` is a v4 UUID where every id Moyasar makes is a v7, which suggests it does
/// (provider-docs `reads.md`, open question 5). Every error leaves the refund's outcome unknown.
/// The order is read in one pass, as a refund's answer is (the module's "Reading the order in
/// one pass").
pub fn read_result(
    request: &RefundRequest,
    _known_refund_id: Option<&str>,
    answer: &Answer,
    read_at: SystemTime,
) -> Result<Lookup, RefundError> {
    if !(200..=299).contains(&answer.status) {
        return Err(read_error(PROVIDER, answer));
    }
    let mut id = uuid::Uuid::encode_buffer();
    let transaction_id = request
        .merchant_reference
        .moyasar_transaction_id()
        .hyphenated()
        .encode_lower(&mut id);
    let order =
        decode_seed(PROVIDER, answer, OrderSeed::trimmed(transaction_id)).map_err(read_failed)?;
    let finding = match order.ours {
        Some(transaction) => {
            let status = transaction_status(transaction.status.as_deref().unwrap_or_default());
            let currency =
                order_currency(request, answer, order.currency.as_deref()).map_err(read_failed)?;
            Finding::Found(RecordedRefund {
                provider_refund_id: transaction.id.map(Text::into_string),
                status,
                amount: transaction
                    .amount
                    .map(|minor| Money::from_minor_units(minor.0, currency)),
                created_at: transaction.created_at.map(Text::into_string),
                failure_reason: match status {
                    RefundStatus::Failed => transaction.message.map(Text::into_string),
                    _ => None,
                },
            })
        }
        None => Finding::Absent,
    };
    Ok(Lookup {
        provider: PROVIDER,
        finding,
        read_at,
        raw: raw(answer),
    })
}

/// Whether a transaction is a refund (its `type`, in any case).
fn is_refund(transaction: &TransactionView<'_>) -> bool {
    transaction
        .type_
        .as_deref()
        .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("refund"))
}

/// The order's currency (else the request's).
fn order_currency(
    request: &RefundRequest,
    answer: &Answer,
    code: Option<&str>,
) -> Result<Currency, RefundError> {
    match code {
        Some(code) => Currency::from_code(code).map_err(|err| protocol(answer, err.to_string())),
        None => Ok(request.amount.currency()),
    }
}

/// What the mapping reads of an order ([`OrderSeed`]), borrowed from the answer's bytes.
#[derive(Debug, Default)]
struct OrderView<'a> {
    /// `currency`.
    currency: Option<Text<'a>>,
    /// `refunded_amount`.
    refunded_amount: Option<Minor>,
    /// `captured_amount`.
    captured_amount: Option<Minor>,
    /// The first transaction of type `refund` with our id.
    ours: Option<TransactionView<'a>>,
    /// The `type` of the first transaction with our id, whatever its type (for the message
    /// when none of them is a refund).
    first_with_our_id: Option<Option<Text<'a>>>,
}

/// What the mapping reads of a transaction; its other fields are skipped.
#[derive(Debug, Default)]
struct TransactionView<'a> {
    id: Option<Text<'a>>,
    type_: Option<Text<'a>>,
    status: Option<Text<'a>>,
    amount: Option<Minor>,
    created_at: Option<Text<'a>>,
    message: Option<Text<'a>>,
}

/// The name serde's messages give a transaction (as the generated type's).
const TRANSACTION: &str = "Transaction";
const TRANSACTION_FIELDS: &[&str] = &["id", "type", "status", "amount", "created_at", "message"];

impl<'de> Deserialize<'de> for TransactionView<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TransactionVisitor;

        impl<'de> Visitor<'de> for TransactionVisitor {
            type Value = TransactionView<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "struct {TRANSACTION}")
            }

            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<TransactionView<'de>, A::Error> {
                let mut view = TransactionView::default();
                let mut seen = [false; 6];
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    match &*key.0 {
                        b"id" => {
                            once(&mut seen[0], "id")?;
                            view.id = map.next_value()?;
                        }
                        b"type" => {
                            once(&mut seen[1], "type")?;
                            view.type_ = map.next_value()?;
                        }
                        b"status" => {
                            once(&mut seen[2], "status")?;
                            view.status = map.next_value()?;
                        }
                        b"amount" => {
                            once(&mut seen[3], "amount")?;
                            view.amount = map.next_value()?;
                        }
                        b"created_at" => {
                            once(&mut seen[4], "created_at")?;
                            view.created_at = map.next_value()?;
                        }
                        b"message" => {
                            once(&mut seen[5], "message")?;
                            view.message = map.next_value()?;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(view)
            }
        }

        deserializer.deserialize_struct(TRANSACTION, TRANSACTION_FIELDS, TransactionVisitor)
    }
}

/// A field read a second time is an error, as in the generated types.
fn once<E: de::Error>(seen: &mut bool, name: &'static str) -> Result<(), E> {
    if std::mem::replace(seen, true) {
        Err(E::duplicate_field(name))
    } else {
        Ok(())
    }
}

/// An object's key as its bytes (borrowed unless it holds an escape), only ever compared with
/// the names of the fields the mapping reads: serde_json then skips checking it as UTF-8,
/// which is most of what a key costs. The key of a field the mapping skips is never used.
struct Key<'a>(Cow<'a, [u8]>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_borrowed_bytes<E: de::Error>(self, key: &'de [u8]) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }

            fn visit_bytes<E: de::Error>(self, key: &[u8]) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_vec())))
            }

            fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key.as_bytes())))
            }

            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key<'de>, E> {
                self.visit_bytes(key.as_bytes())
            }
        }

        deserializer.deserialize_bytes(KeyVisitor)
    }
}

/// A JSON string (or, inside an `Option`, `null`), borrowed from the bytes unless it holds an
/// escape: the generated types' `String`, without a copy per field.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Text<'a>(Cow<'a, str>);

impl Text<'_> {
    fn into_string(self) -> String {
        self.0.into_owned()
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;

        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }

        deserializer.deserialize_str(TextVisitor)
    }
}

/// An amount in minor units, read from the number's own text exactly as the generated types'
/// [`JsonInteger`] reads it, without a copy of that text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Minor(i64);

impl<'de> Deserialize<'de> for Minor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <&'de RawValue>::deserialize(deserializer)?;
        raw.get()
            .parse::<JsonInteger>()
            .map(|integer| Minor(integer.get()))
            .map_err(de::Error::custom)
    }
}

/// Reads an order in one pass ([`OrderView`]), keeping of its transactions only ours: the first
/// of type `refund` whose `id` is `transaction_id` (compared exactly, or with surrounding
/// spaces ignored: [`OrderSeed::trimmed`]).
#[derive(Clone, Copy)]
struct OrderSeed<'r> {
    transaction_id: &'r str,
    trim: bool,
}

impl<'r> OrderSeed<'r> {
    /// Ours when the `id` is exactly `transaction_id` (a refund's answer).
    fn exact(transaction_id: &'r str) -> Self {
        OrderSeed {
            transaction_id,
            trim: false,
        }
    }

    /// Ours when the `id`, surrounding spaces aside, is `transaction_id` (a read).
    fn trimmed(transaction_id: &'r str) -> Self {
        OrderSeed {
            transaction_id,
            trim: true,
        }
    }

    fn is_ours(self, id: &str) -> bool {
        let id = if self.trim { id.trim() } else { id };
        id == self.transaction_id
    }
}

/// The name serde's messages give the order (as the generated type's).
const ORDER: &str = "Order";
const ORDER_FIELDS: &[&str] = &[
    "currency",
    "refunded_amount",
    "captured_amount",
    "transactions",
];

impl<'de> DeserializeSeed<'de> for OrderSeed<'_> {
    type Value = OrderView<'de>;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<OrderView<'de>, D::Error> {
        deserializer.deserialize_struct(ORDER, ORDER_FIELDS, self)
    }
}

impl<'de> Visitor<'de> for OrderSeed<'_> {
    type Value = OrderView<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "struct {ORDER}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderView<'de>, A::Error> {
        let mut view = OrderView::default();
        let mut seen = [false; 4];
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match &*key.0 {
                b"currency" => {
                    once(&mut seen[0], "currency")?;
                    view.currency = map.next_value()?;
                }
                b"refunded_amount" => {
                    once(&mut seen[1], "refunded_amount")?;
                    view.refunded_amount = map.next_value()?;
                }
                b"captured_amount" => {
                    once(&mut seen[2], "captured_amount")?;
                    view.captured_amount = map.next_value()?;
                }
                b"transactions" => {
                    once(&mut seen[3], "transactions")?;
                    map.next_value_seed(Transactions {
                        seed: self,
                        view: &mut view,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(view)
    }
}

/// The `transactions` array, read element by element into the [`OrderView`].
struct Transactions<'s, 'v, 'de> {
    seed: OrderSeed<'s>,
    view: &'v mut OrderView<'de>,
}

impl<'de> DeserializeSeed<'de> for Transactions<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Transactions<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(transaction) = seq.next_element::<TransactionView<'de>>()? {
            if self.view.ours.is_some()
                || !transaction
                    .id
                    .as_deref()
                    .is_some_and(|id| self.seed.is_ours(id))
            {
                continue;
            }
            if self.view.first_with_our_id.is_none() {
                self.view.first_with_our_id = Some(transaction.type_.clone());
            }
            if is_refund(&transaction) {
                self.view.ours = Some(transaction);
            }
        }
        Ok(())
    }
}

/// A 4xx, read leniently (`{message}`, `{message, errors: {field: [..]}}`, `errors: null` or
/// absent or an array, or no JSON at all): in progress when any text says so, else a refusal
/// by status with every text kept.
fn refund_error(answer: &Answer) -> RefundError {
    let body = ErrorBody::read(&answer.body);
    let still_processing = body.texts().any(is_still_processing);
    let kind = if still_processing {
        ErrorKind::InProgress
    } else {
        match refusal_kind(answer.status, &body) {
            ErrorKind::InvalidRequest { field, reason } => match body.messages.first() {
                Some(first) => ErrorKind::InvalidRequest {
                    field: first
                        .field
                        .as_deref()
                        .map_or(field, |name| request_path(name).to_owned()),
                    reason: body
                        .messages
                        .iter()
                        .filter(|m| m.field == first.field)
                        .map(|m| m.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; "),
                },
                None => ErrorKind::InvalidRequest { field, reason },
            },
            kind => kind,
        }
    };
    with_body_text(answer_error(PROVIDER, answer, kind), answer, body)
}

/// A Moyasar request field as a path into [`RefundRequest`].
fn request_path(field: &str) -> &'static str {
    match field {
        "amount" => "amount",
        "transaction_id" => "merchant_reference",
        "id" => "order_id",
        _ => "request",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn still_processing_is_read_in_any_case_with_or_without_the_period() {
        for text in [
            STILL_PROCESSING,
            "initial request is still processing",
            "INITIAL REQUEST IS STILL PROCESSING!",
            "  Initial  request is still\nprocessing. ",
        ] {
            assert!(is_still_processing(text), "{text:?}");
        }
        for text in ["Data validation failed", "Initial request failed", ""] {
            assert!(!is_still_processing(text), "{text:?}");
        }
    }

    #[test]
    fn every_documented_transaction_status_has_its_status() {
        assert_eq!(transaction_status("approved"), RefundStatus::Succeeded);
        assert_eq!(transaction_status("APPROVED"), RefundStatus::Succeeded);
        assert_eq!(transaction_status("failed"), RefundStatus::Failed);
        for unsettled in [
            "initiated",
            "timeout",
            "system_error",
            "refunded",
            "declined",
            "",
        ] {
            assert_eq!(
                transaction_status(unsettled),
                RefundStatus::Pending,
                "{unsettled}"
            );
        }
    }

    fn order(transactions: &str) -> Answer {
        Answer::new(
            200,
            format!(
                r#"{{"id":"0191f5a7","status":"captured","amount":262346,"currency":"SAR","refunded_amount":1000,"transactions":{transactions}}}"#
            ),
        )
    }

    fn sar_request() -> RefundRequest {
        RefundRequest::new(
            PROVIDER,
            "0191f5a7",
            Money::parse("10.00", "SAR").unwrap(),
            crate::MerchantReference::new("RF-1").unwrap(),
        )
    }

    fn finding(answer: &Answer) -> Finding {
        read_result(&sar_request(), None, answer, SystemTime::UNIX_EPOCH)
            .unwrap()
            .finding
    }

    #[test]
    fn retrieve_order_finds_our_refund_transaction_only() {
        let ours = sar_request().merchant_reference.moyasar_transaction_id();
        let refund = order(&format!(
            r#"[{{"id":"{ours}","type":"capture","status":"approved","amount":262346}},
                {{"id":"{ours}","type":"Refund","status":"failed","amount":1000,"message":"declined by issuer"}}]"#
        ));
        let Finding::Found(found) = finding(&refund) else {
            panic!("our refund transaction is listed")
        };
        assert_eq!(found.status, RefundStatus::Failed);
        assert_eq!(found.amount, Some(Money::parse("10.00", "SAR").unwrap()));
        assert_eq!(found.failure_reason.as_deref(), Some("declined by issuer"));

        let capture_only = order(&format!(
            r#"[{{"id":"{ours}","type":"capture","status":"approved","amount":262346}}]"#
        ));
        assert_eq!(finding(&capture_only), Finding::Absent);
        assert_eq!(finding(&order("[]")), Finding::Absent);
    }

    #[test]
    fn a_failed_read_leaves_the_outcome_unknown() {
        for status in [401, 403, 404, 500] {
            let answer = Answer::new(
                status,
                r#"{"type":"authentication_error","message":"Invalid authorization credentials"}"#,
            );
            let error =
                read_result(&sar_request(), None, &answer, SystemTime::UNIX_EPOCH).unwrap_err();
            assert_eq!(error.outcome(), crate::Outcome::Unknown, "{status}");
        }
    }
}
