//! Velero's schedule grammar: the standard cron of robfig/cron v3, which Velero parses
//! schedules with. Five fields (minute, hour, day of month, month, day of week) with `*`, `?`,
//! lists, ranges, steps and month/day names; the descriptors `@yearly` … `@hourly`; `@every
//! <Go duration>`; and an optional `CRON_TZ=<zone>` (or `TZ=`) prefix. Checked at plan time
//! so a schedule Velero would refuse never reaches the cluster.

use super::duration;

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MONTHS: &[&str] = &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

const FIELDS: [Field; 5] = [
    Field { name: "minute", min: 0, max: 59, names: &[] },
    Field { name: "hour", min: 0, max: 23, names: &[] },
    Field { name: "day of month", min: 1, max: 31, names: &[] },
    Field { name: "month", min: 1, max: 12, names: MONTHS },
    Field { name: "day of week", min: 0, max: 6, names: DAYS },
];

const DESCRIPTORS: [&str; 7] = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"];

/// Checks a schedule as Velero will parse it; the error says what is wrong and where.
pub fn validate(schedule: &str) -> Result<(), String> {
    let mut spec = schedule.trim();
    if spec.is_empty() {
        return Err("the schedule is empty".to_string());
    }
    for prefix in ["CRON_TZ=", "TZ="] {
        if let Some(rest) = spec.strip_prefix(prefix) {
            let (zone, after) = rest.split_once(char::is_whitespace).ok_or_else(|| format!("nothing follows {prefix}{rest}"))?;
            check_zone(zone)?;
            spec = after.trim_start();
        }
    }
    if let Some(descriptor) = spec.strip_prefix('@') {
        if let Some(interval) = descriptor.strip_prefix("every") {
            let interval = interval.trim();
            return duration::parse(interval).map(|_| ()).map_err(|e| format!("@every needs a Go duration: {e}"));
        }
        let lower = spec.to_ascii_lowercase();
        return if DESCRIPTORS.contains(&lower.as_str()) {
            Ok(())
        } else {
            Err(format!("unknown descriptor {spec:?}; use one of {}, or @every <duration>", DESCRIPTORS.join(", ")))
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    match fields.len() {
        5 => {}
        6 => {
            return Err(format!(
                "{spec:?} has six fields, but Velero's schedules have no seconds field: give five (minute hour \
                 day-of-month month day-of-week), e.g. \"0 3 * * *\""
            ))
        }
        n => return Err(format!("{spec:?} has {n} fields; a schedule has five: minute hour day-of-month month day-of-week")),
    }
    for (text, field) in fields.iter().zip(FIELDS.iter()) {
        for part in text.split(',') {
            check_range(part, field).map_err(|e| format!("{} field {text:?}: {e}", field.name))?;
        }
    }
    Ok(())
}

/// One element of a list: `*`, `?`, `N`, `N-M`, each with an optional `/step`.
fn check_range(part: &str, field: &Field) -> Result<(), String> {
    let (range, step) = match part.split_once('/') {
        Some((range, step)) => (range, Some(step)),
        None => (part, None),
    };
    if let Some(step) = step {
        match step.parse::<u32>() {
            Ok(0) => return Err("a step must be at least 1".to_string()),
            Ok(_) => {}
            Err(_) => return Err(format!("step {step:?} is not a number")),
        }
    }
    if range == "*" || range == "?" {
        return Ok(());
    }
    let (start, end) = match range.split_once('-') {
        Some((start, end)) => (value(start, field)?, Some(value(end, field)?)),
        None => (value(range, field)?, None),
    };
    if let Some(end) = end {
        if end < start {
            return Err(format!("the range {range:?} ends before it starts"));
        }
    }
    Ok(())
}

fn value(text: &str, field: &Field) -> Result<u32, String> {
    if let Some(index) = field.names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(index as u32 + field.min);
    }
    let number: u32 = text.parse().map_err(|_| {
        if field.names.is_empty() {
            format!("{text:?} is not a number")
        } else {
            format!("{text:?} is neither a number nor a name ({})", field.names.join(", "))
        }
    })?;
    if number < field.min || number > field.max {
        return Err(format!("{number} is outside {}-{}", field.min, field.max));
    }
    Ok(number)
}

/// A time zone name as Go's `time.LoadLocation` takes it (checked by shape: the cluster's
/// zone database decides the rest).
fn check_zone(zone: &str) -> Result<(), String> {
    let ok = !zone.is_empty()
        && zone.split('/').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c)));
    if ok {
        Ok(())
    } else {
        Err(format!("{zone:?} is not a time zone name such as UTC or Europe/Berlin"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn velero_schedules_pass() {
        for good in [
            "0 3 * * *",
            "*/15 * * * *",
            "0 0 1 jan,jul ?",
            "30 2 * * MON-FRI",
            "0 1-5/2 * * 0",
            "5,35 */2 1-15 * *",
            "@daily",
            "@Hourly",
            "@every 6h",
            "@every 1h30m",
            "CRON_TZ=Europe/Berlin 0 3 * * *",
            "TZ=UTC @daily",
        ] {
            assert_eq!(validate(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn what_velero_refuses_is_refused_with_a_reason() {
        let six = validate("0 0 3 * * *").unwrap_err();
        assert!(six.contains("no seconds field"), "{six}");
        assert!(validate("0 3 * *").unwrap_err().contains("has 4 fields"));
        assert!(validate("60 3 * * *").unwrap_err().contains("minute field"));
        assert!(validate("0 24 * * *").unwrap_err().contains("outside 0-23"));
        assert!(validate("0 3 0 * *").unwrap_err().contains("day of month"));
        assert!(validate("0 3 * 13 *").unwrap_err().contains("month field"));
        assert!(validate("0 3 * * 7").unwrap_err().contains("outside 0-6"));
        assert!(validate("0 3 * * fun").unwrap_err().contains("neither a number nor a name"));
        assert!(validate("*/0 * * * *").unwrap_err().contains("at least 1"));
        assert!(validate("0 5-1 * * *").unwrap_err().contains("ends before it starts"));
        assert!(validate("@fortnightly").unwrap_err().contains("unknown descriptor"));
        assert!(validate("@every 2d").unwrap_err().contains("Go duration"));
        assert!(validate("CRON_TZ=Not A Zone 0 3 * * *").is_err());
        assert!(validate("").is_err());
    }
}
