//! Wall-clock formatting without a date library: RFC 1123 (Optty's
//! `refundDate`) and RFC 3339 in UTC (Moyasar's `created_at`), with or without milliseconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, as OpenApp timestamps are written.
pub fn epoch_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Splits a time into (year, month, day, hour, minute, second, weekday with
/// 0 = Sunday), UTC. Uses Howard Hinnant's days-from-civil inverse.
fn civil(t: SystemTime) -> (i64, u32, u32, u32, u32, u32, u32) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let weekday = u32::try_from((days + 4).rem_euclid(7)).unwrap_or(0);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (rem / 3_600, (rem % 3_600) / 60, rem % 60);
    let [h, m, s] = [h, m, s].map(|v| u32::try_from(v).unwrap_or(0));
    (year, month, day, h, m, s, weekday)
}

/// `Fri, 08 Oct 2021 06:22:20 GMT`.
pub fn rfc1123(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, wd) = civil(t);
    format!(
        "{}, {d:02} {} {y:04} {h:02}:{mi:02}:{s:02} GMT",
        DAYS[wd as usize],
        MONTHS[(mo - 1) as usize]
    )
}

/// `2024-09-15T12:27:45Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, _) = civil(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `2024-09-15T12:27:45.042Z`: RFC 3339 UTC with milliseconds (the request log's `time`,
/// Optty's `createdAt`).
pub fn rfc3339_ms(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, _) = civil(t);
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_millis())
        .unwrap_or(0);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_documented_examples() {
        let t = UNIX_EPOCH + Duration::from_secs(1_633_674_140);
        assert_eq!(rfc1123(t), "Fri, 08 Oct 2021 06:22:20 GMT");
        let t = UNIX_EPOCH + Duration::from_secs(1_726_403_265);
        assert_eq!(rfc3339(t), "2024-09-15T12:27:45Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_726_403_265_042);
        assert_eq!(rfc3339_ms(t), "2024-09-15T12:27:45.042Z");
        assert_eq!(
            epoch_ms(UNIX_EPOCH + Duration::from_millis(1_678_206_688_075)),
            1_678_206_688_075
        );
    }
}
