//! Numbers as Redis reads and writes them.
//!
//! Integers follow Redis's `string2ll`: an optional `-`, then digits without a leading
//! zero (`0` itself aside), within `i64`; `+1`, `01`, `-0` and ` 1` are not integers.
//! Floats for `INCRBYFLOAT` follow its `strtold` reading: decimal text with an
//! optional exponent, `inf` included. Redis adds them in 80-bit `long double` and
//! prints 17 digits after the point with trailing zeros cut; [`add_decimal`] does the
//! same in software ([`super::extended`]) for numbers of up to 38 significant
//! digits below 2^128, and adds anything larger or finer as `f64`, printed as the
//! shortest text that reads back the same.

/// An integer as Redis reads one, or `None`.
pub fn parse_i64(text: &[u8]) -> Option<i64> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    let canonical = match digits {
        [] => false,
        [b'0'] => text.len() == 1,
        [first, ..] => *first != b'0' && digits.iter().all(u8::is_ascii_digit),
    };
    if !canonical || text.len() > 20 {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// A float as `strtold` reads one (no surrounding space, no hex form), or `None`.
/// NaN is refused, as Redis refuses it.
pub fn parse_f64(text: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(text).ok()?;
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_whitespace()) {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if unsigned.starts_with("0x") {
        return None;
    }
    let value: f64 = match unsigned {
        "inf" | "infinity" => {
            if lower.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }
        }
        _ if !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.') => return None,
        _ => s.parse().ok()?,
    };
    (!value.is_nan()).then_some(value)
}

/// What [`add_decimal`] can fail with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatError {
    /// An operand is not a float.
    NotAFloat,
    /// The sum is infinite or not a number.
    NanOrInfinity,
}

/// `current + increment` for `INCRBYFLOAT`, as the text Redis stores.
pub fn add_decimal(current: &[u8], increment: &[u8]) -> Result<String, FloatError> {
    let a = parse_f64(current).ok_or(FloatError::NotAFloat)?;
    let b = parse_f64(increment).ok_or(FloatError::NotAFloat)?;
    let sum = a + b;
    if !sum.is_finite() {
        return Err(FloatError::NanOrInfinity);
    }
    let exact = std::str::from_utf8(current)
        .ok()
        .zip(std::str::from_utf8(increment).ok())
        .and_then(|(a, b)| super::extended::add(a, b));
    Ok(exact.unwrap_or_else(|| shortest(sum)))
}

/// The shortest text that reads back as `value`, without an exponent.
fn shortest(value: f64) -> String {
    let text = format!("{value}");
    if text == "-0" { "0".into() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_as_string2ll_reads_them() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-5"), Some(-5));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b"01",
            b"-0",
            b" 1",
            b"1 ",
            b"1.0",
            b"9223372036854775808",
            b"abc",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn floats_as_strtold_reads_them() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-.5"), Some(-0.5));
        assert_eq!(parse_f64(b"3e2"), Some(300.0));
        assert_eq!(parse_f64(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"-Infinity"), Some(f64::NEG_INFINITY));
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"nan",
            b"0x10",
            b"abc",
            b"1.2.3",
            b"e5",
        ] {
            assert_eq!(parse_f64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn decimal_sums_print_as_redis_prints_them() {
        let add = |a: &str, b: &str| add_decimal(a.as_bytes(), b.as_bytes());
        assert_eq!(add("0.1", "0.2").unwrap(), "0.3");
        assert_eq!(add("10.50", "0.1").unwrap(), "10.6");
        assert_eq!(add("5.0e3", "2.0e2").unwrap(), "5200");
        assert_eq!(add("3", "-3").unwrap(), "0");
        assert_eq!(add("-0.5", "0.25").unwrap(), "-0.25");
        assert_eq!(
            add("1", "0.00000000000000001").unwrap(),
            "1.00000000000000001"
        );
        // Beyond exact range: the f64 sum.
        assert_eq!(add("1e40", "1").unwrap(), format!("{}", 1e40f64 + 1.0));
        assert_eq!(add("1", "inf"), Err(FloatError::NanOrInfinity));
        assert_eq!(add("abc", "1"), Err(FloatError::NotAFloat));
    }

    #[test]
    fn repeated_tenths_print_as_in_redis() {
        let mut value = "0".to_string();
        for _ in 0..10 {
            value = add_decimal(value.as_bytes(), b"0.1").unwrap();
        }
        assert_eq!(value, "1");
    }
}
