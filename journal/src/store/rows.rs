//! Entries and events read from a row of either backend.

use refunds::{MerchantReference, Money, Provider, RefundRequest};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::entry::{
    Entry, EntryState, Event, EventKind, Lease, OutcomeColumn, SettledBy, StatusColumn,
};
use crate::error::JournalError;
use crate::text::unescape;

pub(super) fn corrupt(what: impl std::fmt::Display) -> JournalError {
    JournalError::Corrupt(what.to_string())
}

/// The value of `column`; a value that cannot be decoded (a text column outside its list, an
/// integer out of range) is [`JournalError::Corrupt`].
pub(super) fn get<'r, T, R>(row: &'r R, column: &'static str) -> Result<T, JournalError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get::<T, _>(column).map_err(|error| match error {
        sqlx::Error::ColumnDecode { index, source } => corrupt(format!("{index}: {source}")),
        error => JournalError::Database(error),
    })
}

pub(super) fn to_u32(value: i64, column: &str) -> Result<u32, JournalError> {
    u32::try_from(value).map_err(|_| corrupt(format!("{column} = {value} is out of range")))
}

pub(super) fn to_u16(value: i64, column: &str) -> Result<u16, JournalError> {
    u16::try_from(value).map_err(|_| corrupt(format!("{column} = {value} is out of range")))
}

/// Reads an entry from a row of either backend.
pub(super) fn decode_entry<R>(row: &R) -> Result<Entry, JournalError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> EntryState: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> StatusColumn: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> SettledBy: Decode<'r, R::Database> + Type<R::Database>,
{
    let provider: Provider = get::<String, _>(row, "provider")?
        .parse()
        .map_err(corrupt)?;
    let reference =
        MerchantReference::new(get::<String, _>(row, "merchant_reference")?).map_err(corrupt)?;
    let request: RefundRequest =
        serde_json::from_str(&get::<String, _>(row, "request")?).map_err(corrupt)?;
    let currency: String = get(row, "currency")?;
    let money = |column: &'static str| -> Result<Option<Money>, JournalError> {
        get::<Option<String>, _>(row, column)?
            .map(|amount| Money::parse(&amount, &currency).map_err(corrupt))
            .transpose()
    };
    let text = |column: &'static str| -> Result<Option<String>, JournalError> {
        Ok(get::<Option<String>, _>(row, column)?.map(unescape))
    };
    let lease = match (
        text("lease_owner")?,
        get::<Option<i64>, _>(row, "lease_expires_at_ms")?,
    ) {
        (Some(owner), Some(expires_at_ms)) => Some(Lease {
            owner,
            expires_at_ms,
        }),
        _ => None,
    };
    Ok(Entry {
        provider,
        merchant_reference: reference,
        fingerprint: get(row, "fingerprint")?,
        request,
        state: get(row, "state")?,
        attempts: to_u32(get(row, "attempts")?, "attempts")?,
        ambiguous: get(row, "ambiguous")?,
        lease,
        provider_refund_id: text("provider_refund_id")?,
        refund_status: get::<Option<StatusColumn>, _>(row, "refund_status")?.map(Into::into),
        amount: money("amount")?,
        refunded_total: money("refunded_total")?,
        captured_total: money("captured_total")?,
        already_applied: get(row, "already_applied")?,
        http_status: get::<Option<i64>, _>(row, "http_status")?
            .map(|s| to_u16(s, "http_status"))
            .transpose()?,
        error_kind: text("error_kind")?,
        error_message: text("error_message")?,
        unresolved_reason: text("unresolved_reason")?,
        settled_by: get(row, "settled_by")?,
        wire_ms: get(row, "wire_ms")?,
        created_at_ms: get(row, "created_at_ms")?,
        updated_at_ms: get(row, "updated_at_ms")?,
        settled_at_ms: get(row, "settled_at_ms")?,
        attempt_at_ms: get(row, "attempt_at_ms")?,
        attempt_deadline_ms: get(row, "attempt_deadline_ms")?,
        version: get(row, "version")?,
    })
}

/// Reads an event from a row of either backend.
pub(super) fn decode_event<R>(row: &R) -> Result<Event, JournalError>
where
    R: Row,
    &'static str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> EventKind: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> OutcomeColumn: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(Event {
        id: get(row, "id")?,
        provider: get::<String, _>(row, "provider")?
            .parse()
            .map_err(corrupt)?,
        merchant_reference: MerchantReference::new(get::<String, _>(row, "merchant_reference")?)
            .map_err(corrupt)?,
        at_ms: get(row, "at_ms")?,
        kind: get(row, "kind")?,
        attempt: get::<Option<i64>, _>(row, "attempt")?
            .map(|a| to_u32(a, "attempt"))
            .transpose()?,
        owner: get::<Option<String>, _>(row, "owner")?.map(unescape),
        outcome: get::<Option<OutcomeColumn>, _>(row, "outcome")?.map(Into::into),
        http_status: get::<Option<i64>, _>(row, "http_status")?
            .map(|s| to_u16(s, "http_status"))
            .transpose()?,
        error_kind: get::<Option<String>, _>(row, "error_kind")?.map(unescape),
        detail: get::<Option<String>, _>(row, "detail")?.map(unescape),
        elapsed_ms: get(row, "elapsed_ms")?,
    })
}
