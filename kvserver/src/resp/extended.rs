//! Redis's `long double` arithmetic for `INCRBYFLOAT`, in software.
//!
//! Redis reads both numbers with `strtold` into the x87 80-bit format (a 64-bit
//! mantissa), adds them there, and prints the sum with `%.17Lf`, trailing zeros cut.
//! Rust has no such type, so `Extended` is one: a sign, a 64-bit mantissa and a
//! binary exponent, with the three steps done exactly and rounded to nearest, ties to
//! even, as glibc does them. That gives Redis's text, rounding noise included
//! (`3.3` + `1000` is `1003.29999999999999999`).
//!
//! It covers numbers of at most 38 significant digits, with at most 38 digits after
//! the point and magnitudes below 2^128; [`add`] answers `None` for the rest, and the
//! caller adds those as `f64`.

/// `mantissa × 2^exponent`, negative when `negative`; the mantissa has its top bit set
/// (zero aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Extended {
    negative: bool,
    mantissa: u64,
    exponent: i32,
}

/// A 256-bit unsigned integer as (high, low) halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct U256(u128, u128);

impl U256 {
    fn from_shifted(value: u128, shift: u32) -> Option<U256> {
        match shift {
            0 => Some(U256(0, value)),
            1..=127 => Some(U256(value >> (128 - shift), value << shift)),
            128..=255 if value.leading_zeros() >= shift - 128 => {
                Some(U256(value << (shift - 128), 0))
            }
            _ => None,
        }
    }

    fn bits(self) -> u32 {
        if self.0 != 0 {
            256 - self.0.leading_zeros()
        } else {
            128 - self.1.leading_zeros()
        }
    }

    fn add(self, other: U256) -> U256 {
        let (low, carry) = self.1.overflowing_add(other.1);
        U256(self.0 + other.0 + u128::from(carry), low)
    }

    fn sub(self, other: U256) -> U256 {
        let (low, borrow) = self.1.overflowing_sub(other.1);
        U256(self.0 - other.0 - u128::from(borrow), low)
    }

    fn shr(self, n: u32) -> U256 {
        match n {
            0 => self,
            1..=127 => U256(self.0 >> n, (self.1 >> n) | (self.0 << (128 - n))),
            128..=255 => U256(0, self.0 >> (n - 128)),
            _ => U256(0, 0),
        }
    }

    fn bit(self, n: u32) -> bool {
        if n >= 128 {
            self.0 >> (n - 128) & 1 == 1
        } else {
            self.1 >> n & 1 == 1
        }
    }

    /// Whether any of the `n` lowest bits is set.
    fn any_below(self, n: u32) -> bool {
        match n {
            0 => false,
            1..=127 => self.1 & ((1u128 << n) - 1) != 0,
            128 => self.1 != 0,
            _ => self.1 != 0 || self.0 & ((1u128 << (n - 128).min(127)) - 1) != 0,
        }
    }

    /// `self / divisor` and the remainder, by long division (`divisor < 2^127`).
    fn div_rem(self, divisor: u128) -> (U256, u128) {
        let mut quotient = U256(0, 0);
        let mut rem: u128 = 0;
        for i in (0..self.bits()).rev() {
            rem = (rem << 1) | u128::from(self.bit(i));
            if rem >= divisor {
                rem -= divisor;
                if i >= 128 {
                    quotient.0 |= 1 << (i - 128);
                } else {
                    quotient.1 |= 1 << i;
                }
            }
        }
        (quotient, rem)
    }
}

/// Rounds `value × 2^exponent` (plus something below its last bit when `sticky`) to
/// a 64-bit mantissa, to nearest, ties to even.
fn round(negative: bool, value: U256, exponent: i32, sticky: bool) -> Option<Extended> {
    let bits = value.bits();
    if bits == 0 {
        return Some(Extended {
            negative,
            mantissa: 0,
            exponent: 0,
        });
    }
    if bits <= 64 {
        let shift = 64 - bits;
        return Some(Extended {
            negative,
            mantissa: u64::try_from(value.1 << shift).ok()?,
            exponent: exponent - i32::try_from(shift).ok()?,
        });
    }
    let extra = bits - 64;
    let mut mantissa = u64::try_from(value.shr(extra).1).ok()?;
    let half = value.bit(extra - 1);
    let rest = value.any_below(extra - 1) || sticky;
    let mut exponent = exponent + i32::try_from(extra).ok()?;
    if half && (rest || mantissa & 1 == 1) {
        match mantissa.checked_add(1) {
            Some(m) => mantissa = m,
            None => {
                mantissa = 1 << 63;
                exponent += 1;
            }
        }
    }
    Some(Extended {
        negative,
        mantissa,
        exponent,
    })
}

impl Extended {
    /// `strtold` of decimal text, within the range this module covers.
    fn parse(text: &str) -> Option<Extended> {
        let (negative, rest) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exp) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], rest[i + 1..].parse::<i32>().ok()?),
            None => (rest, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if (whole.is_empty() && fraction.is_empty())
            || !whole
                .bytes()
                .chain(fraction.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let digits = format!("{whole}{fraction}");
        let digits = digits.trim_start_matches('0');
        if digits.is_empty() {
            return Some(Extended {
                negative,
                mantissa: 0,
                exponent: 0,
            });
        }
        if digits.len() > 38 {
            return None;
        }
        let d: u128 = digits.parse().ok()?;
        let e = exp.checked_sub(i32::try_from(fraction.len()).ok()?)?;
        if e >= 0 {
            let n = d.checked_mul(10u128.checked_pow(u32::try_from(e).ok()?)?)?;
            return round(negative, U256(0, n), 0, false);
        }
        let p = 10u128.checked_pow(u32::try_from(-e).ok()?)?;
        // d × 2^s / p with s large enough that the quotient has at least 65 bits.
        let d_bits = 128 - d.leading_zeros();
        let p_bits = 128 - p.leading_zeros();
        let s = (65 + p_bits).saturating_sub(d_bits);
        let (q, r) = U256::from_shifted(d, s)?.div_rem(p);
        round(negative, q, -i32::try_from(s).ok()?, r != 0)
    }

    /// The exact sum, rounded.
    fn add(self, other: Extended) -> Option<Extended> {
        if self.mantissa == 0 {
            return Some(other);
        }
        if other.mantissa == 0 {
            return Some(self);
        }
        let (big, small) = if self.exponent >= other.exponent {
            (self, other)
        } else {
            (other, self)
        };
        let gap = u32::try_from(big.exponent - small.exponent).ok()?;
        if gap > 130 {
            // The smaller is far below half the larger's last bit.
            return Some(big);
        }
        let a = U256::from_shifted(u128::from(big.mantissa), gap)?;
        let b = U256(0, u128::from(small.mantissa));
        let (negative, sum) = if big.negative == small.negative {
            (big.negative, a.add(b))
        } else if a >= b {
            (big.negative, a.sub(b))
        } else {
            (small.negative, b.sub(a))
        };
        round(negative, sum, small.exponent, false)
    }

    /// `%.17Lf` with trailing zeros (and then a trailing point) cut, `-0` as `0`.
    fn to_text(self) -> Option<String> {
        const SCALE: u128 = 100_000_000_000_000_000;
        let scaled: u128 = if self.exponent >= 0 {
            let whole =
                u128::from(self.mantissa).checked_shl(u32::try_from(self.exponent).ok()?)?;
            if whole >> u32::try_from(self.exponent).ok()? != u128::from(self.mantissa) {
                return None;
            }
            whole.checked_mul(SCALE)?
        } else {
            let n = u128::from(self.mantissa) * SCALE;
            let k = u32::try_from(-self.exponent).ok()?;
            if k >= 128 {
                0
            } else {
                let q = n >> k;
                let half = k > 0 && n >> (k - 1) & 1 == 1;
                let rest = k > 1 && n & ((1u128 << (k - 1)) - 1) != 0;
                if half && (rest || q & 1 == 1) {
                    q + 1
                } else {
                    q
                }
            }
        };
        let whole = scaled / SCALE;
        let fraction = scaled % SCALE;
        let mut out = String::new();
        if self.negative && scaled != 0 {
            out.push('-');
        }
        out.push_str(&whole.to_string());
        if fraction != 0 {
            let digits = format!("{fraction:017}");
            out.push('.');
            out.push_str(digits.trim_end_matches('0'));
        }
        Some(out)
    }
}

/// `a + b` as Redis's `INCRBYFLOAT` prints it, when both are decimal text this
/// module covers; `None` otherwise.
pub fn add(a: &str, b: &str) -> Option<String> {
    Extended::parse(a)?.add(Extended::parse(b)?)?.to_text()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_print_as_redis_prints_them() {
        // Each checked against redis-server 7.0 on x86-64.
        let cases = [
            ("0.1", "0.2", "0.3"),
            ("10.50", "0.1", "10.6"),
            ("3.3", "1000", "1003.29999999999999999"),
            ("5.0e3", "2.0e2", "5200"),
            ("3", "-3", "0"),
            ("-0.5", "0.25", "-0.25"),
            ("0", "1e-20", "0"),
            ("1", "0.00000000000000001", "1.00000000000000001"),
            ("123456789", "0.1", "123456789.09999999999854481"),
            ("0.1", "0.7", "0.8"),
            ("1.1", "2.2", "3.3"),
            ("99999999999.99", "0.01", "100000000000"),
            ("-1e10", "0.3", "-9999999999.70000000018626451"),
        ];
        for (a, b, want) in cases {
            assert_eq!(add(a, b).as_deref(), Some(want), "{a} + {b}");
        }
    }

    #[test]
    fn exact_values_stay_exact() {
        assert_eq!(
            Extended::parse("1").unwrap(),
            Extended {
                negative: false,
                mantissa: 1 << 63,
                exponent: -63
            }
        );
        assert_eq!(
            Extended::parse("0.5").unwrap().to_text().as_deref(),
            Some("0.5")
        );
        assert_eq!(
            Extended::parse("-2.25").unwrap().to_text().as_deref(),
            Some("-2.25")
        );
        assert_eq!(
            Extended::parse("18446744073709551615")
                .unwrap()
                .to_text()
                .as_deref(),
            Some("18446744073709551615")
        );
    }

    #[test]
    fn out_of_range_is_left_to_the_caller() {
        assert_eq!(add("1e300", "1"), None);
        assert_eq!(add("1e-50", "1"), None);
        assert_eq!(add("123456789012345678901234567890123456789", "1"), None);
    }
}
