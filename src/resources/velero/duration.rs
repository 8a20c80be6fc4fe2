//! Go durations (`time.ParseDuration`), the form Velero's TTLs and intervals take: parsed, and
//! printed the way Go prints them (`720h0m0s`), so that `720h` and `720h0m0s` are one value
//! and never show as a change.

/// Nanoseconds per unit Go accepts.
const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// The largest Go duration (`math.MaxInt64` nanoseconds, about 292 years).
const MAX_NANOS: u128 = i64::MAX as u128;

/// Parses a non-negative Go duration such as `720h`, `1h30m`, `1.5h` or `90s` into nanoseconds.
pub fn parse(text: &str) -> Result<u128, String> {
    let original = text;
    let text = text.trim();
    let invalid = |why: &str| format!("{original:?} is not a duration ({why}); write it like \"720h\", \"1h30m\" or \"90s\"");
    if text == "0" {
        return Ok(0);
    }
    if text.is_empty() {
        return Err(invalid("it is empty"));
    }
    if text.starts_with('-') {
        return Err(invalid("it is negative"));
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid("a number is missing before a unit"));
        }
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let scale = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, scale)| *scale)
            .ok_or_else(|| if unit.is_empty() { invalid("a unit is missing") } else { invalid(&format!("unknown unit {unit:?}; use h, m, s, ms, us or ns")) })?;
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| invalid("a number is too large"))? };
        let mut nanos = whole.checked_mul(scale).ok_or_else(|| invalid("it is too large"))?;
        // Fractions count to the nanosecond, as Go's do.
        let mut place = scale;
        for digit in fraction.chars() {
            place /= 10;
            nanos += u128::from(digit.to_digit(10).unwrap_or(0)) * place;
        }
        total = total.checked_add(nanos).ok_or_else(|| invalid("it is too large"))?;
        rest = next;
    }
    if total > MAX_NANOS {
        return Err(invalid("it is longer than Go's largest duration, about 292 years"));
    }
    Ok(total)
}

/// `nanos` as Go's `Duration.String()` prints it: `720h0m0s`, `1m30.5s`, `500ms`, `0s`.
pub fn format(nanos: u128) -> String {
    const SECOND: u128 = 1_000_000_000;
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", decimal(nanos, 1_000));
    }
    if nanos < SECOND {
        return format!("{}ms", decimal(nanos, 1_000_000));
    }
    let hours = nanos / (3600 * SECOND);
    let minutes = nanos % (3600 * SECOND) / (60 * SECOND);
    let seconds = nanos % (60 * SECOND);
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{}s", decimal(seconds, SECOND)));
    out
}

/// `value / unit` with its fraction, trailing zeros dropped (`1.5`, `2`).
fn decimal(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let fraction = value % unit;
    if fraction == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// The canonical form of a duration as written.
pub fn canonical(text: &str) -> Result<String, String> {
    parse(text).map(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_as_go_does() {
        for (written, printed) in [
            ("720h", "720h0m0s"),
            ("720h0m0s", "720h0m0s"),
            ("1h30m", "1h30m0s"),
            ("90m", "1h30m0s"),
            ("1.5h", "1h30m0s"),
            ("90s", "1m30s"),
            ("30s", "30s"),
            ("1m30.5s", "1m30.5s"),
            ("500ms", "500ms"),
            ("1500ms", "1.5s"),
            ("2us", "2µs"),
            ("1.5µs", "1.5µs"),
            ("10ns", "10ns"),
            ("0", "0s"),
            ("0s", "0s"),
            ("24h", "24h0m0s"),
            ("2h45m30s", "2h45m30s"),
        ] {
            assert_eq!(canonical(written).as_deref(), Ok(printed), "{written}");
        }
    }

    #[test]
    fn refuses_what_go_refuses() {
        for bad in ["", "30", "30d", "1w", "-5m", "h", "1..5h", "5 m", "abc"] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(parse("30d").unwrap_err().contains("unknown unit \"d\""));
        assert!(parse("3000000h").unwrap_err().contains("292 years"));
    }
}
