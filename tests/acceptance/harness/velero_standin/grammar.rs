//! The two small grammars the Velero stand-in must read the way Velero does: cron
//! expressions as robfig/cron v3's `ParseStandard` takes them (Velero's schedule controller)
//! and Go durations (`metav1.Duration`: `spec.ttl`, timeouts), with the same error texts, so a
//! test sees what Velero would write into `validationErrors`.
//!
//! Deliberately not here: computing the next run time (the stand-in never runs schedules).

use std::path::Path;
use std::time::Duration;

/// Velero's schedule check: `Ok(())` or the `validationErrors` it would write.
pub fn validate_schedule(expression: &str) -> Result<(), Vec<String>> {
    // cron.Parse panics on an empty string; Velero checks first.
    if expression.is_empty() {
        return Err(vec!["Schedule must be a non-empty valid Cron expression".to_string()]);
    }
    parse_standard(expression).map_err(|e| vec![format!("invalid schedule: {e}")])
}

/// robfig/cron v3 `ParseStandard`: an optional `CRON_TZ=`/`TZ=` prefix, then a descriptor
/// (`@daily`, `@every 1h30m`, ...) or exactly five fields.
fn parse_standard(spec: &str) -> Result<(), String> {
    let mut spec = spec.trim_start();
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let end = spec.find(' ').unwrap_or(spec.len());
        let zone = &spec[spec.find('=').unwrap() + 1..end];
        if !time_zone_exists(zone) {
            return Err(format!("provided bad location {zone}: unknown time zone {zone}"));
        }
        spec = spec[end..].trim();
    }
    if spec.starts_with('@') {
        return parse_descriptor(spec);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("expected exactly 5 fields, found {}: [{}]", fields.len(), fields.join(" ")));
    }
    const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let bounds: [(u32, u32, &[&str], u32); 5] =
        [(0, 59, &[], 0), (0, 23, &[], 0), (1, 31, &[], 0), (1, 12, &MONTHS, 1), (0, 6, &DAYS, 0)];
    for (field, (min, max, names, first)) in fields.iter().zip(bounds) {
        for range in field.split(',') {
            parse_range(range, min, max, names, first)?;
        }
    }
    Ok(())
}

/// One `a`, `a-b`, `*` or `?`, optionally `/step` (robfig's `getRange`).
fn parse_range(expr: &str, min: u32, max: u32, names: &[&str], first: u32) -> Result<(), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single_digit = low_and_high.len() == 1;
    let (start, end) = if low_and_high[0] == "*" || low_and_high[0] == "?" {
        (min, max)
    } else {
        let start = parse_value(low_and_high[0], names, first)?;
        let end = match low_and_high.len() {
            1 => start,
            2 => parse_value(low_and_high[1], names, first)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        (start, end)
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = parse_int(range_and_step[1])?;
            // "N/step" means "N-max/step".
            if single_digit && low_and_high[0] != "*" && low_and_high[0] != "?" {
                return check_range(start, max, step, min, max, expr);
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    check_range(start, end, step, min, max, expr)
}

fn check_range(start: u32, end: u32, step: u32, min: u32, max: u32, expr: &str) -> Result<(), String> {
    if start < min {
        return Err(format!("beginning of range ({start}) below minimum ({min}): {expr}"));
    }
    if end > max {
        return Err(format!("end of range ({end}) above maximum ({max}): {expr}"));
    }
    if start > end {
        return Err(format!("beginning of range ({start}) beyond end of range ({end}): {expr}"));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

/// A month or weekday name (case-insensitive) or a number.
fn parse_value(expr: &str, names: &[&str], first: u32) -> Result<u32, String> {
    match names.iter().position(|n| n.eq_ignore_ascii_case(expr)) {
        Some(i) => Ok(i as u32 + first),
        None => parse_int(expr),
    }
}

fn parse_int(expr: &str) -> Result<u32, String> {
    match expr.parse::<i64>() {
        Ok(n) if n < 0 => Err(format!("negative number ({n}) not allowed: {expr}")),
        Ok(n) => u32::try_from(n).map_err(|_| format!("failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: value out of range")),
        Err(_) => Err(format!("failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: invalid syntax")),
    }
}

fn parse_descriptor(descriptor: &str) -> Result<(), String> {
    match descriptor {
        "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight" | "@hourly" => Ok(()),
        _ => match descriptor.strip_prefix("@every ") {
            Some(every) => parse_go_duration(every)
                .map(|_| ())
                .map_err(|e| format!("failed to parse duration {descriptor}: {e}")),
            None => Err(format!("unrecognized descriptor: {descriptor}")),
        },
    }
}

/// Go's `time.LoadLocation`: `UTC`, `Local` or a file of the system's zoneinfo.
fn time_zone_exists(zone: &str) -> bool {
    matches!(zone, "" | "UTC" | "Local")
        || (!zone.contains("..") && !zone.starts_with('/') && Path::new("/usr/share/zoneinfo").join(zone).is_file())
}

/// Go's `time.ParseDuration` (`720h`, `1h30m`, `1.5s`, `300ms`; no days), with its error text.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration {text:?}");
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." {
            return Err(invalid());
        }
        let value: f64 = number.parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("time: missing unit in duration {text:?}")),
            unit => return Err(format!("time: unknown unit {unit:?} in duration {text:?}")),
        };
        total += value * seconds_per_unit;
        rest = &rest[unit_len..];
    }
    if negative && total > 0.0 {
        // Velero never gets this far with a negative TTL; treat it as no time at all.
        return Ok(Duration::ZERO);
    }
    Ok(Duration::from_secs_f64(total))
}

/// Go's `Duration.String()` for whole seconds and more (`720h0m0s`, `4h0m0s`, `10m0s`),
/// and seconds with a fraction below a minute (`1.5s`), as `metav1.Duration` serialises.
pub fn format_go_duration(duration: Duration) -> String {
    let total = duration.as_secs();
    let nanos = duration.subsec_nanos();
    if total < 60 {
        if nanos == 0 {
            return format!("{total}s");
        }
        let fraction = format!("{nanos:09}");
        return format!("{total}.{}s", fraction.trim_end_matches('0'));
    }
    let (hours, minutes, seconds) = (total / 3600, total % 3600 / 60, total % 60);
    let seconds = if nanos == 0 {
        format!("{seconds}s")
    } else {
        format!("{seconds}.{}s", format!("{nanos:09}").trim_end_matches('0'))
    };
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds}")
    } else {
        format!("{minutes}m{seconds}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn velero_standin_cron_like_robfig() {
        for ok in ["0 1 * * *", "*/15 * * * *", "0 0 1 jan-mar mon-fri", "@daily", "@every 1h30m", "CRON_TZ=UTC 0 3 * * *", "5 4 ? * SUN"] {
            assert_eq!(validate_schedule(ok), Ok(()), "{ok}");
        }
        let refused = |spec: &str| validate_schedule(spec).unwrap_err().join("; ");
        assert_eq!(refused(""), "Schedule must be a non-empty valid Cron expression");
        assert_eq!(refused("0 0 1 * * *"), "invalid schedule: expected exactly 5 fields, found 6: [0 0 1 * * *]");
        assert_eq!(refused("61 * * * *"), "invalid schedule: end of range (61) above maximum (59): 61");
        assert_eq!(refused("* * 0 * *"), "invalid schedule: beginning of range (0) below minimum (1): 0");
        assert_eq!(refused("@weekdays"), "invalid schedule: unrecognized descriptor: @weekdays");
        assert!(refused("@every 1d").contains("failed to parse duration @every 1d: time: unknown unit \"d\""));
        assert!(refused("x * * * *").contains("failed to parse int from x"));
        assert!(refused("TZ=Mars/Olympus 0 * * * *").contains("provided bad location Mars/Olympus"));
    }

    #[test]
    fn velero_standin_go_durations() {
        assert_eq!(parse_go_duration("720h"), Ok(Duration::from_secs(720 * 3600)));
        assert_eq!(parse_go_duration("720h0m0s"), Ok(Duration::from_secs(720 * 3600)));
        assert_eq!(parse_go_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_go_duration("30d").is_err());
        assert!(parse_go_duration("").is_err());
        assert_eq!(format_go_duration(Duration::from_secs(720 * 3600)), "720h0m0s");
        assert_eq!(format_go_duration(Duration::from_secs(600)), "10m0s");
        assert_eq!(format_go_duration(Duration::from_millis(1500)), "1.5s");
    }
}
