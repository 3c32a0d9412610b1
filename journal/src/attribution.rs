//! Which refund on an AfterPay order is ours: the pure decision [`Journal::reconcile`]
//! takes after reading the order of an unresolved AfterPay refund ([`attribute`]).
//!
//! Riverty echoes none of our references in its record: Get Order lists the order's refunds
//! by refund number, amount and `insertedAt`, nothing else of ours. The journal makes
//! attribution possible by three rules of its own:
//!
//! - at most one AfterPay refund per order is in flight or unknown at a time, across replicas
//!   (a unique index of the database: [`JournalError::OrderBusy`](crate::JournalError::OrderBusy)),
//!   so a refund on the order that no other entry accounts for can only be this entry's;
//! - every refund number the journal learns is on record, per order
//!   ([`Journal::order_entries`](crate::Journal::order_entries));
//! - an attempt has a deadline after which nothing of it is on the wire
//!   ([`Entry::attempt_deadline_ms`](crate::Entry::attempt_deadline_ms)).
//!
//! **This relies on every refund of the order going through the journal.** A refund made
//! elsewhere (Riverty's merchant portal, another system) that looks like ours (made after our
//! attempt, with our amount, while ours was not applied) would be taken for ours; one that does
//! not look like ours (made before our attempt, or later than our attempt could have been
//! booked, or another amount) is evidence that the rule was broken, and leaves the entry to a
//! person.
//!
//! [`Journal::reconcile`]: crate::Journal::reconcile

use std::collections::BTreeSet;

use refunds::{Money, RecordedRefund};

/// What the journal knows and what the read found, for one unresolved AfterPay entry. Times
/// are milliseconds since the Unix epoch on the database's clock.
#[derive(Debug, Clone)]
pub(crate) struct Evidence<'a> {
    /// Our entry's amount (the request's).
    pub amount: Money,
    /// When the latest attempt's intent was recorded: the attempt left after it.
    pub intent_at_ms: i64,
    /// The latest attempt's deadline: after it, nothing of the attempt is on the wire.
    pub deadline_ms: i64,
    /// The refunds the read lists on the order (none when it found none).
    pub refunds: &'a [RecordedRefund],
    /// When the read was made, at the earliest: the database's clock just before the read was
    /// sent (so the read itself was made at or after it).
    pub read_at_ms: i64,
    /// The refund numbers the journal's other entries on the order account for.
    pub accounted: &'a BTreeSet<String>,
    /// The journal's other entries on the order that may own a listed refund whose number the
    /// journal does not know (applied without a refund number on record, or unresolved
    /// themselves: written before the per-order rule): their merchant references.
    pub unnumbered: &'a [String],
    /// How long after the attempt's deadline a refund of it may still appear in a read
    /// ([`JournalConfig::settling_delay`](crate::JournalConfig::settling_delay)).
    pub settling_ms: i64,
    /// How far the provider's clock may be from the database's
    /// ([`JournalConfig::clock_skew`](crate::JournalConfig::clock_skew)).
    pub skew_ms: i64,
}

/// What the read says about our refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attribution {
    /// Exactly one refund on the order that no entry accounts for, made after our attempt
    /// (where the times can be compared), with our amount: it is ours, applied.
    Ours(RecordedRefund),
    /// No refund on the order that no entry accounts for, in a read made after the attempt's
    /// deadline plus the settling delay: not applied (so it may be sent again).
    NotApplied,
    /// No unaccounted refund yet, but the read was made before the attempt's deadline plus the
    /// settling delay: a read from `decide_at_ms` on decides.
    NotYet {
        /// The attempt's deadline plus the settling delay.
        decide_at_ms: i64,
    },
    /// Anything else: the evidence, for a person.
    Ambiguous(String),
}

/// The decision for one unresolved AfterPay entry. In order:
///
/// | # | the read (refunds no other entry accounts for: *unaccounted*) | decision |
/// |---|---|---|
/// | 1 | none unaccounted; read at or after deadline + settling delay | [`Attribution::NotApplied`] |
/// | 2 | none unaccounted; read earlier | [`Attribution::NotYet`] |
/// | 3 | some unaccounted, and another entry on the order may own a refund without a number on record | [`Attribution::Ambiguous`] |
/// | 4 | an unaccounted refund without a refund number | [`Attribution::Ambiguous`] |
/// | 5 | an unaccounted refund made before the intent − skew, or after deadline + settling + skew (made outside the journal) | [`Attribution::Ambiguous`] |
/// | 6 | two or more unaccounted | [`Attribution::Ambiguous`] |
/// | 7 | exactly one, amount missing or another amount | [`Attribution::Ambiguous`] |
/// | 8 | exactly one, our amount | [`Attribution::Ours`] |
///
/// Times are compared only where the provider's `insertedAt` is parseable ([`timestamp_ms`]);
/// a refund whose time cannot be read is not ruled out by time.
pub(crate) fn attribute(evidence: &Evidence<'_>) -> Attribution {
    let settles_at_ms = evidence.deadline_ms.saturating_add(evidence.settling_ms);
    let unaccounted: Vec<&RecordedRefund> = evidence
        .refunds
        .iter()
        .filter(|refund| !number(refund).is_some_and(|number| evidence.accounted.contains(number)))
        .collect();
    if unaccounted.is_empty() {
        return if evidence.read_at_ms >= settles_at_ms {
            Attribution::NotApplied
        } else {
            Attribution::NotYet {
                decide_at_ms: settles_at_ms,
            }
        };
    }
    let why = if !evidence.unnumbered.is_empty() {
        Some(format!(
            "the journal's entries {} on this order may own a refund whose number is not on \
             record (applied without one, or unresolved themselves), so the order's refunds \
             cannot be told apart",
            evidence.unnumbered.join(", ")
        ))
    } else if unaccounted.iter().any(|refund| number(refund).is_none()) {
        Some("a listed refund has no refund number".to_owned())
    } else if let Some(outside) = unaccounted.iter().find(|refund| {
        inserted_ms(refund).is_some_and(|at| {
            at < evidence.intent_at_ms.saturating_sub(evidence.skew_ms)
                || at > settles_at_ms.saturating_add(evidence.skew_ms)
        })
    }) {
        Some(format!(
            "refund {} was made outside the journal (it was booked before this attempt was \
             sent, or later than this attempt could have been booked: the clocks may differ \
             by {} s)",
            number(outside).unwrap_or("?"),
            evidence.skew_ms / 1000
        ))
    } else if unaccounted.len() > 1 {
        Some(format!(
            "{} refunds on the order are accounted for by no journal entry, where this attempt \
             can have made one at most",
            unaccounted.len()
        ))
    } else if unaccounted[0].amount != Some(evidence.amount) {
        Some(format!(
            "the one refund no journal entry accounts for is of another amount than this \
             refund's {}",
            evidence.amount
        ))
    } else {
        None
    };
    match why {
        None => Attribution::Ours(unaccounted[0].clone()),
        Some(why) => Attribution::Ambiguous(format!(
            "{why}. Refunds on the order no journal entry accounts for: {}; refund numbers the \
             journal accounts for: {}",
            unaccounted
                .iter()
                .map(|refund| describe(refund))
                .collect::<Vec<_>>()
                .join("; "),
            if evidence.accounted.is_empty() {
                "none".to_owned()
            } else {
                evidence
                    .accounted
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )),
    }
}

/// A listed refund's number, trimmed (as the facade matches a known one).
fn number(refund: &RecordedRefund) -> Option<&str> {
    refund.provider_refund_id.as_deref().map(str::trim)
}

fn inserted_ms(refund: &RecordedRefund) -> Option<i64> {
    refund.created_at.as_deref().and_then(timestamp_ms)
}

/// A listed refund in a few words: `RN-1 (EUR 10.00, inserted 2023-09-27T12:24:53Z)`.
pub(crate) fn describe(refund: &RecordedRefund) -> String {
    format!(
        "{} ({}, inserted {})",
        refund
            .provider_refund_id
            .as_deref()
            .unwrap_or("no refund number"),
        refund
            .amount
            .map_or_else(|| "no amount".to_owned(), |amount| amount.to_string()),
        refund.created_at.as_deref().unwrap_or("at an unknown time")
    )
}

/// Milliseconds since the Unix epoch of an RFC 3339 / ISO 8601 date-time with a UTC offset:
/// `2023-09-27T12:24:53Z`, `2023-09-27T14:24:53.1234567+02:00` (Riverty documents
/// `yyyy-MM-ddTHH:mm:ss.fffffffzzz`), `+0200` or `+02` too; the separator may be `T`, `t` or a
/// space; fractions beyond milliseconds are cut. `None` for anything else, a time without an
/// offset among them (its zone is unknown).
pub(crate) fn timestamp_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let bytes = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = bytes.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let at = |i: usize| bytes.get(i).copied();
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if at(4) != Some(b'-')
        || at(7) != Some(b'-')
        || !matches!(at(10), Some(b'T' | b't' | b' '))
        || at(13) != Some(b':')
        || at(16) != Some(b':')
    {
        return None;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=month_days).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if at(i) == Some(b'.') {
        i += 1;
        let start = i;
        while at(i).is_some_and(|b| b.is_ascii_digit()) {
            if i - start < 3 {
                millis = millis * 10 + i64::from(bytes[i] - b'0');
            }
            i += 1;
        }
        let kept = i - start;
        if kept == 0 {
            return None;
        }
        for _ in kept..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match at(i) {
        Some(b'Z' | b'z') if i + 1 == bytes.len() => 0,
        Some(sign @ (b'+' | b'-')) => {
            let hours = digits(i + 1, 2)?;
            let minutes = match bytes.len() - (i + 3) {
                0 => 0,
                2 => digits(i + 3, 2)?,
                3 if at(i + 3) == Some(b':') => digits(i + 4, 2)?,
                _ => return None,
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let total = hours * 60 + minutes;
            if sign == b'+' { total } else { -total }
        }
        _ => return None,
    };
    // A leap second reads as the last second of its minute.
    let second = second.min(59);
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

/// `ms` (milliseconds since the Unix epoch) as an RFC 3339 UTC time, to the millisecond:
/// `2023-09-27T12:00:00.000Z`.
pub(crate) fn format_ms(ms: i64) -> String {
    let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1_000 % 60,
        in_day % 1_000
    )
}

/// The proleptic Gregorian date of a day since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use refunds::RefundStatus;

    /// 2023-09-27T12:00:00Z.
    const NOON: i64 = 1_695_816_000_000;
    const MINUTE: i64 = 60_000;

    #[test]
    fn timestamps_with_an_offset_are_read_to_the_millisecond() {
        let cases: &[(&str, Option<i64>)] = &[
            ("2023-09-27T12:00:00Z", Some(NOON)),
            ("1970-01-01T00:00:00Z", Some(0)),
            ("1969-12-31T23:59:59Z", Some(-1_000)),
            ("2000-02-29T00:00:00Z", Some(951_782_400_000)),
            ("2023-09-27t12:00:00z", Some(NOON)),
            ("2023-09-27 12:00:00Z", Some(NOON)),
            ("  2023-09-27T12:00:00Z ", Some(NOON)),
            ("2023-09-27T12:00:00.5Z", Some(NOON + 500)),
            ("2023-09-27T12:00:00.123Z", Some(NOON + 123)),
            ("2023-09-27T14:00:00.1234567+02:00", Some(NOON + 123)),
            ("2023-09-27T14:00:00+0200", Some(NOON)),
            ("2023-09-27T14:00:00+02", Some(NOON)),
            ("2023-09-27T09:30:00-02:30", Some(NOON)),
            ("2023-09-27T12:00:00+00:00", Some(NOON)),
            ("2016-12-31T23:59:60Z", Some(1_483_228_799_000)),
            // No offset: the zone is unknown.
            ("2023-09-27T12:00:00", None),
            ("2023-09-27T12:00:00.123", None),
            ("2023-09-27", None),
            ("2023-02-29T12:00:00Z", None),
            ("2023-13-01T12:00:00Z", None),
            ("2023-09-31T12:00:00Z", None),
            ("2023-09-27T24:00:00Z", None),
            ("2023-09-27T12:00:00.Z", None),
            ("2023-09-27T12:00:00Zjunk", None),
            ("2023-09-27T12:00:00+2:00", None),
            ("2023-09-27T12:00:00+25:00", None),
            ("2023/09/27T12:00:00Z", None),
            ("27.09.2023 12:00", None),
            ("", None),
            ("2023-09-27T12:00:00+02:00:00", None),
        ];
        for (text, expected) in cases {
            assert_eq!(timestamp_ms(text), *expected, "{text:?}");
        }
    }

    #[test]
    fn times_are_written_back_as_read() {
        for ms in [0, -1, NOON, NOON + 123, 951_782_400_000, 4_102_444_799_999] {
            let text = format_ms(ms);
            assert_eq!(timestamp_ms(&text), Some(ms), "{text}");
        }
        assert_eq!(format_ms(NOON + 5), "2023-09-27T12:00:00.005Z");
        assert_eq!(format_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    fn eur(amount: &str) -> Money {
        Money::parse(amount, "EUR").unwrap()
    }

    fn listed(
        number: Option<&str>,
        amount: Option<&str>,
        inserted: Option<&str>,
    ) -> RecordedRefund {
        RecordedRefund {
            provider_refund_id: number.map(str::to_owned),
            status: RefundStatus::Succeeded,
            amount: amount.map(eur),
            created_at: inserted.map(str::to_owned),
            failure_reason: None,
        }
    }

    /// The shape of a decision, for the table.
    #[derive(Debug, PartialEq, Eq)]
    enum Shape {
        Ours(&'static str),
        NotApplied,
        NotYet(i64),
        /// Ambiguous, with a phrase its evidence holds.
        Ambiguous(&'static str),
    }

    /// Every branch of [`attribute`]. Our refund: EUR 10.00; the attempt's intent at noon,
    /// its deadline a minute later; settling delay 10 minutes; clock skew 2 minutes. RN-0 is
    /// another entry's refund, on record.
    #[test]
    fn attribution_of_every_kind_of_read() {
        const INTENT: i64 = NOON;
        const DEADLINE: i64 = NOON + MINUTE;
        const SETTLES: i64 = DEADLINE + 10 * MINUTE;
        let before_intent = "2023-09-27T11:50:00Z"; // beyond the skew before the intent
        let within_skew = "2023-09-27T11:59:00Z"; // a minute before: within the skew
        let after_intent = "2023-09-27T12:00:01Z";
        let much_later = "2023-09-27T12:20:00Z"; // after deadline + settling + skew

        let rn0 = || listed(Some("RN-0"), Some("5.00"), Some("2023-09-27T10:00:00Z"));
        let ours = || listed(Some("RN-1"), Some("10.00"), Some(after_intent));
        type Case = (
            &'static str,
            Vec<RecordedRefund>,
            i64,
            &'static [&'static str],
            Shape,
        );
        let cases: Vec<Case> = vec![
            // 1, 2: nothing unaccounted.
            (
                "absent, read after settling",
                vec![],
                SETTLES + MINUTE,
                &[],
                Shape::NotApplied,
            ),
            (
                "absent, read at the settling time",
                vec![],
                SETTLES,
                &[],
                Shape::NotApplied,
            ),
            (
                "absent, read before settling",
                vec![],
                SETTLES - 1,
                &[],
                Shape::NotYet(SETTLES),
            ),
            (
                "only accounted refunds, late read",
                vec![rn0()],
                SETTLES + MINUTE,
                &[],
                Shape::NotApplied,
            ),
            (
                "only accounted refunds, early read",
                vec![rn0()],
                DEADLINE,
                &[],
                Shape::NotYet(SETTLES),
            ),
            (
                "accounted refund listed with spaces",
                vec![listed(Some(" RN-0 "), Some("5.00"), None)],
                SETTLES,
                &[],
                Shape::NotApplied,
            ),
            (
                "absent while another entry is unnumbered: not ours either way",
                vec![rn0()],
                SETTLES,
                &["RF-OLD"],
                Shape::NotApplied,
            ),
            // 8: ours.
            (
                "one unaccounted, our amount, after the intent",
                vec![rn0(), ours()],
                DEADLINE,
                &[],
                Shape::Ours("RN-1"),
            ),
            (
                "found before the settling time too",
                vec![ours()],
                INTENT,
                &[],
                Shape::Ours("RN-1"),
            ),
            (
                "inserted within the clock skew before the intent",
                vec![listed(Some("RN-1"), Some("10.00"), Some(within_skew))],
                SETTLES,
                &[],
                Shape::Ours("RN-1"),
            ),
            (
                "insertedAt unparseable: not ruled out by time",
                vec![listed(
                    Some("RN-1"),
                    Some("10.00"),
                    Some("27.09.2023 12:00"),
                )],
                SETTLES,
                &[],
                Shape::Ours("RN-1"),
            ),
            (
                "no insertedAt",
                vec![listed(Some("RN-1"), Some("10.00"), None)],
                SETTLES,
                &[],
                Shape::Ours("RN-1"),
            ),
            // 3: another entry may own it.
            (
                "unaccounted and an unnumbered entry",
                vec![ours()],
                SETTLES,
                &["RF-OLD"],
                Shape::Ambiguous("RF-OLD"),
            ),
            // 4: no number.
            (
                "unaccounted without a number",
                vec![listed(None, Some("10.00"), Some(after_intent))],
                SETTLES,
                &[],
                Shape::Ambiguous("no refund number"),
            ),
            // 5: outside the journal.
            (
                "made before the intent",
                vec![listed(Some("RN-X"), Some("10.00"), Some(before_intent))],
                SETTLES,
                &[],
                Shape::Ambiguous("outside the journal"),
            ),
            (
                "made after deadline + settling + skew",
                vec![listed(Some("RN-X"), Some("10.00"), Some(much_later))],
                SETTLES + 30 * MINUTE,
                &[],
                Shape::Ambiguous("outside the journal"),
            ),
            (
                "ours and one made before",
                vec![
                    ours(),
                    listed(Some("RN-X"), Some("3.00"), Some(before_intent)),
                ],
                SETTLES,
                &[],
                Shape::Ambiguous("RN-X"),
            ),
            // 6: two.
            (
                "two unaccounted",
                vec![
                    ours(),
                    listed(Some("RN-2"), Some("10.00"), Some(after_intent)),
                ],
                SETTLES,
                &[],
                Shape::Ambiguous("2 refunds"),
            ),
            // 7: another amount.
            (
                "one unaccounted, another amount",
                vec![listed(Some("RN-1"), Some("10.01"), Some(after_intent))],
                SETTLES,
                &[],
                Shape::Ambiguous("another amount"),
            ),
            (
                "one unaccounted, no amount",
                vec![listed(Some("RN-1"), None, Some(after_intent))],
                SETTLES,
                &[],
                Shape::Ambiguous("another amount"),
            ),
        ];
        let accounted: BTreeSet<String> = ["RN-0".to_owned()].into();
        for (name, refunds, read_at_ms, unnumbered, expected) in cases {
            let unnumbered: Vec<String> = unnumbered.iter().map(|s| (*s).to_owned()).collect();
            let decision = attribute(&Evidence {
                amount: eur("10.00"),
                intent_at_ms: INTENT,
                deadline_ms: DEADLINE,
                refunds: &refunds,
                read_at_ms,
                accounted: &accounted,
                unnumbered: &unnumbered,
                settling_ms: 10 * MINUTE,
                skew_ms: 2 * MINUTE,
            });
            let shape = match &decision {
                Attribution::Ours(refund) => {
                    let number = refund.provider_refund_id.clone().unwrap();
                    Shape::Ours(if number == "RN-1" { "RN-1" } else { "other" })
                }
                Attribution::NotApplied => Shape::NotApplied,
                Attribution::NotYet { decide_at_ms } => Shape::NotYet(*decide_at_ms),
                Attribution::Ambiguous(evidence) => {
                    let Shape::Ambiguous(phrase) = expected else {
                        panic!("{name}: {evidence}");
                    };
                    assert!(evidence.contains(phrase), "{name}: {evidence}");
                    assert!(
                        evidence.contains("accounts for: RN-0"),
                        "{name}: {evidence}"
                    );
                    Shape::Ambiguous(phrase)
                }
            };
            assert_eq!(shape, expected, "{name}: {decision:?}");
        }
    }

    #[test]
    fn evidence_names_every_unaccounted_refund() {
        let refunds = [
            listed(Some("RN-1"), Some("10.00"), Some("2023-09-27T12:00:01Z")),
            listed(Some("RN-2"), None, None),
        ];
        let Attribution::Ambiguous(evidence) = attribute(&Evidence {
            amount: eur("10.00"),
            intent_at_ms: NOON,
            deadline_ms: NOON,
            refunds: &refunds,
            read_at_ms: NOON,
            accounted: &BTreeSet::new(),
            unnumbered: &[],
            settling_ms: 0,
            skew_ms: 0,
        }) else {
            panic!("two refunds are ambiguous");
        };
        assert!(
            evidence.contains(
                "RN-1 (EUR 10.00, inserted 2023-09-27T12:00:01Z); RN-2 (no amount, inserted at \
                 an unknown time)"
            ),
            "{evidence}"
        );
        assert!(
            evidence.ends_with("journal accounts for: none"),
            "{evidence}"
        );
    }
}
