//! cty numbers: arbitrary-precision decimals, kept as `i64` or `f64` when those hold them exactly.

use std::fmt;

use super::ValueError;

/// A cty number.
///
/// cty numbers are arbitrary-precision decimals, and Terraform compares them exactly: a config
/// value `0.1` is not the `f64` nearest to 0.1. So a number is kept as an `i64` or an `f64` only
/// when that holds its value exactly, and otherwise as its decimal text ([`Number::Big`]).
/// [`Number::parse`] and [`Number::from_f64`] pick the narrowest form; values built by hand in
/// another form still compare and encode by value.
///
/// A [`Number::Float`] stands for the exact binary value of the `f64`.
#[derive(Debug, Clone)]
pub enum Number {
    Int(i64),
    Float(f64),
    /// Plain decimal text (`-123.45`, no exponent) of a value that neither `i64` nor `f64` holds
    /// exactly.
    Big(String),
}

/// Plain decimal text gets this many digits at most, so a hostile exponent (`1e999999999`)
/// cannot make us allocate without bound. cty's own limit is far higher, but no Terraform value
/// worth representing comes close.
const MAX_PLAIN_DIGITS: u64 = 10_000;

impl Number {
    /// An `f64` as a number: integral values within `i64` become [`Number::Int`].
    pub fn from_f64(f: f64) -> Number {
        // 2^63 is exactly representable; the range check keeps the cast exact.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) {
            Number::Int(f as i64)
        } else {
            Number::Float(f)
        }
    }

    /// Parses decimal text (optional sign, digits, optional fraction and exponent, e.g. `-1.5e3`)
    /// into the narrowest exact form.
    pub fn parse(text: &str) -> Result<Number, ValueError> {
        let decimal = Decimal::parse(text)
            .ok_or_else(|| ValueError::new(format!("{text:?} is not a number")))?;
        let plain = decimal.to_plain().ok_or_else(|| {
            ValueError::new(format!("number {text:?} is too large or too precise"))
        })?;
        if decimal.exponent >= 0 {
            if let Ok(i) = plain.parse::<i64>() {
                return Ok(Number::Int(i));
            }
        }
        // Rust parses to the nearest f64; it is the value itself only if its exact expansion
        // reads back as the same text.
        if let Ok(f) = plain.parse::<f64>() {
            if f.is_finite() && exact_decimal(f) == plain {
                return Ok(Number::Float(f));
            }
        }
        Ok(Number::Big(plain))
    }

    /// The narrowest exact form (as [`Number::parse`] would give). NaN is no cty number.
    pub fn normalized(&self) -> Result<Number, ValueError> {
        match self {
            Number::Int(i) => Ok(Number::Int(*i)),
            Number::Float(f) if f.is_nan() => Err(ValueError::new("NaN is not a valid number")),
            Number::Float(f) => Ok(Number::from_f64(*f)),
            Number::Big(text) => Number::parse(text),
        }
    }

    /// The value as an `i64`, if it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self.normalized().ok()? {
            Number::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The value as an `f64`, rounded to the nearest one if need be.
    pub fn as_f64(&self) -> f64 {
        match self {
            Number::Int(i) => *i as f64,
            Number::Float(f) => *f,
            Number::Big(text) => text.parse().unwrap_or(f64::NAN),
        }
    }

    /// Exact plain decimal text, used for comparing forms; `inf`/`-inf` for infinities.
    fn exact_text(&self) -> String {
        match self {
            Number::Int(i) => i.to_string(),
            Number::Float(f) => exact_decimal(*f),
            Number::Big(text) => Decimal::parse(text)
                .and_then(|d| d.to_plain())
                .unwrap_or_else(|| text.clone()),
        }
    }
}

/// Compares values, whatever the forms: `Int(3) == Float(3.0) == Big("3.0")`.
impl PartialEq for Number {
    fn eq(&self, other: &Number) -> bool {
        match (self, other) {
            (Number::Int(a), Number::Int(b)) => a == b,
            (Number::Float(a), Number::Float(b)) => a == b,
            (Number::Int(i), Number::Float(f)) | (Number::Float(f), Number::Int(i)) => {
                matches!(Number::from_f64(*f), Number::Int(j) if j == *i)
            }
            _ => self.exact_text() == other.exact_text(),
        }
    }
}

/// The exact value as plain decimal text (floats in full, e.g. `0.1f64` shows all its digits).
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.exact_text())
    }
}

impl From<i64> for Number {
    fn from(i: i64) -> Number {
        Number::Int(i)
    }
}

impl From<i32> for Number {
    fn from(i: i32) -> Number {
        Number::Int(i.into())
    }
}

impl From<u32> for Number {
    fn from(i: u32) -> Number {
        Number::Int(i.into())
    }
}

impl From<u64> for Number {
    fn from(u: u64) -> Number {
        match i64::try_from(u) {
            Ok(i) => Number::Int(i),
            // Digits only, so parsing cannot fail; 2^63 and some others are exact floats.
            Err(_) => Number::parse(&u.to_string()).unwrap_or(Number::Big(u.to_string())),
        }
    }
}

impl From<f64> for Number {
    fn from(f: f64) -> Number {
        Number::from_f64(f)
    }
}

/// The exact decimal expansion of an `f64`, without trailing zeros.
fn exact_decimal(f: f64) -> String {
    // Every f64 is a multiple of 2^-1074, so 1074 fractional digits always hold it exactly;
    // Rust's fixed-precision formatting prints exact digits, not a rounded approximation.
    let text = format!("{f:.1074}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// A decimal as ±digits × 10^exponent, with no leading or trailing zeros in `digits` (which is
/// empty for zero).
struct Decimal {
    negative: bool,
    digits: String,
    exponent: i64,
}

impl Decimal {
    fn parse(text: &str) -> Option<Decimal> {
        let (negative, unsigned) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
            Some((mantissa, exponent)) => (mantissa, exponent.parse::<i64>().ok()?),
            None => (unsigned, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !is_digits(whole) || !is_digits(fraction) {
            return None;
        }
        let exponent = exponent.checked_sub(i64::try_from(fraction.len()).ok()?)?;
        let all = format!("{whole}{fraction}");
        let significant = all.trim_start_matches('0');
        let digits = significant.trim_end_matches('0');
        let exponent = exponent.checked_add((significant.len() - digits.len()) as i64)?;
        if digits.is_empty() {
            return Some(Decimal {
                negative: false,
                digits: String::new(),
                exponent: 0,
            });
        }
        Some(Decimal {
            negative,
            digits: digits.to_string(),
            exponent,
        })
    }

    /// Plain text without exponent, or None when it would be unreasonably long.
    fn to_plain(&self) -> Option<String> {
        if self.digits.is_empty() {
            return Some("0".to_string());
        }
        let len = self.digits.len() as u64;
        if len + self.exponent.unsigned_abs() > MAX_PLAIN_DIGITS {
            return None;
        }
        let mut out = String::from(if self.negative { "-" } else { "" });
        if self.exponent >= 0 {
            out.push_str(&self.digits);
            out.push_str(&"0".repeat(self.exponent as usize));
        } else {
            let fraction_len = self.exponent.unsigned_abs() as usize;
            if self.digits.len() > fraction_len {
                let (whole, fraction) = self.digits.split_at(self.digits.len() - fraction_len);
                out.push_str(&format!("{whole}.{fraction}"));
            } else {
                out.push_str("0.");
                out.push_str(&"0".repeat(fraction_len - self.digits.len()));
                out.push_str(&self.digits);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Number {
        Number::parse(text).unwrap()
    }

    #[test]
    fn parse_picks_narrowest_exact_form() {
        assert!(matches!(parse("42"), Number::Int(42)));
        assert!(matches!(parse("-7.000"), Number::Int(-7)));
        assert!(matches!(parse("1.5e3"), Number::Int(1500)));
        assert!(matches!(parse("-0"), Number::Int(0)));
        assert!(matches!(parse("1.5"), Number::Float(f) if f == 1.5));
        assert!(matches!(parse("0.375"), Number::Float(f) if f == 0.375));
        // 2^64 is beyond i64 but an exact f64.
        assert!(matches!(parse("18446744073709551616"), Number::Float(_)));
        // 0.1 has no exact binary form; keep the decimal.
        assert!(matches!(parse("0.1"), Number::Big(ref s) if s == "0.1"));
        assert!(matches!(parse("1.10e-1"), Number::Big(ref s) if s == "0.11"));
        assert!(
            matches!(parse("18446744073709551615"), Number::Big(ref s) if s == "18446744073709551615")
        );
        assert!(
            matches!(parse("-1.2345678901234567890123"), Number::Big(ref s) if s == "-1.2345678901234567890123")
        );
    }

    #[test]
    fn parse_rejects_non_numbers() {
        for text in [
            "",
            "-",
            ".",
            "abc",
            "1.2.3",
            "1e",
            "0x10",
            "1e99999999999",
            "NaN",
            "inf",
        ] {
            assert!(Number::parse(text).is_err(), "{text:?} should not parse");
        }
    }

    #[test]
    fn equality_is_by_value() {
        assert_eq!(Number::Int(3), Number::Float(3.0));
        assert_eq!(Number::Float(3.0), Number::Big("3.00".into()));
        assert_eq!(Number::Big("0.1".into()), Number::Big("1e-1".into()));
        assert_ne!(Number::Float(0.1), Number::Big("0.1".into()));
        assert_ne!(Number::Int(1), Number::Float(1.5));
        assert_eq!(Number::from(u64::MAX), parse("18446744073709551615"));
    }

    #[test]
    fn display_is_exact() {
        assert_eq!(Number::Int(-5).to_string(), "-5");
        assert_eq!(Number::Float(1.5).to_string(), "1.5");
        assert_eq!(Number::Float(1e20).to_string(), "100000000000000000000");
        assert_eq!(
            Number::Float(0.1).to_string(),
            "0.1000000000000000055511151231257827021181583404541015625"
        );
        assert_eq!(
            Number::Float(f64::MIN_POSITIVE * f64::EPSILON)
                .to_string()
                .len(),
            1076
        );
    }

    #[test]
    fn conversions() {
        assert_eq!(parse("12.0").as_i64(), Some(12));
        assert_eq!(Number::Float(1e300).as_i64(), None);
        assert_eq!(Number::Big("0.5".into()).as_f64(), 0.5);
        assert!(Number::Float(f64::NAN).normalized().is_err());
    }
}
