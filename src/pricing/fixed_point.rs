//! tapd's `FixedPoint`: an integer coefficient and a power-of-ten scale.

use std::fmt;

use num_bigint::BigUint;
use rust_decimal::Decimal;
use serde::Serialize;

use super::PricingError;

/// Largest scale accepted: tapd builds `10^scale` through a float-to-int64 conversion,
/// which is exact only up to 10^18.
pub const MAX_SCALE: u8 = 18;

/// A non-negative fixed-point number `coefficient / 10^scale`, as tapd's RFQ messages carry
/// rates (`rfqrpc.FixedPoint{coefficient: string, scale: uint32}`).
#[derive(Clone, PartialEq, Eq)]
pub struct FixedPoint {
    coefficient: BigUint,
    scale: u8,
}

impl fmt::Debug for FixedPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FixedPoint({}e-{})", self.coefficient, self.scale)
    }
}

impl fmt::Display for FixedPoint {
    /// The exact decimal value, e.g. `97123450000` or `1.05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.coefficient.to_string();
        let scale = usize::from(self.scale);
        if scale == 0 {
            return f.write_str(&digits);
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{int}.{frac}")
    }
}

impl Serialize for FixedPoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("FixedPoint", 2)?;
        st.serialize_field("coefficient", &self.coefficient.to_string())?;
        st.serialize_field("scale", &self.scale)?;
        st.end()
    }
}

pub(crate) fn pow10(k: u8) -> BigUint {
    BigUint::from(10u32).pow(u32::from(k))
}

impl FixedPoint {
    /// From the wire form: a decimal coefficient string and a scale.
    pub fn from_parts(coefficient: &str, scale: u32) -> Result<Self, PricingError> {
        let scale = u8::try_from(scale)
            .ok()
            .filter(|s| *s <= MAX_SCALE)
            .ok_or(PricingError::Scale(scale))?;
        if coefficient.is_empty() || !coefficient.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PricingError::Coefficient(coefficient.to_owned()));
        }
        let coefficient = BigUint::parse_bytes(coefficient.as_bytes(), 10)
            .ok_or_else(|| PricingError::Coefficient(coefficient.to_owned()))?;
        Ok(Self { coefficient, scale })
    }

    /// `value · 10^scale` at `scale` (tapd's `FixedPointFromUint64`: the input is unscaled).
    pub fn from_u64(value: u64, scale: u8) -> Self {
        Self {
            coefficient: BigUint::from(value) * pow10(scale),
            scale,
        }
    }

    /// The exact value of a non-negative decimal (its mantissa at its own scale).
    pub fn from_decimal(d: Decimal) -> Result<Self, PricingError> {
        if d.is_sign_negative() && !d.is_zero() {
            return Err(PricingError::Negative("rate"));
        }
        let scale = u8::try_from(d.scale()).map_err(|_| PricingError::Scale(d.scale()))?;
        if scale > MAX_SCALE {
            return Err(PricingError::Scale(d.scale()));
        }
        Ok(Self {
            coefficient: BigUint::from(d.mantissa().unsigned_abs()),
            scale,
        })
    }

    /// The coefficient as tapd's wire form carries it.
    pub fn coefficient(&self) -> String {
        self.coefficient.to_string()
    }

    /// The scale (number of decimal places).
    pub fn scale(&self) -> u8 {
        self.scale
    }

    pub(crate) fn coef(&self) -> &BigUint {
        &self.coefficient
    }

    /// True if the value is zero.
    pub fn is_zero(&self) -> bool {
        self.coefficient == BigUint::ZERO
    }

    /// tapd's `ScaleTo`: multiply or truncating-divide the coefficient by a power of ten.
    pub fn scale_to(&self, scale: u8) -> Self {
        let coefficient = if scale >= self.scale {
            &self.coefficient * pow10(scale - self.scale)
        } else {
            &self.coefficient / pow10(self.scale - scale)
        };
        Self { coefficient, scale }
    }

    /// tapd's `Mul` (both operands at one scale): `a·b / 10^scale`, truncating.
    pub(crate) fn mul(&self, other: &Self) -> Self {
        Self {
            coefficient: &self.coefficient * &other.coefficient / pow10(self.scale),
            scale: self.scale,
        }
    }

    /// tapd's `Div` (both operands at one scale, divisor non-zero): `a·10^scale / b`,
    /// truncating.
    pub(crate) fn div(&self, other: &Self) -> Self {
        Self {
            coefficient: &self.coefficient * pow10(self.scale) / &other.coefficient,
            scale: self.scale,
        }
    }

    /// The integer part as a `u64`, or `None` if it does not fit.
    pub fn to_u64_floor(&self) -> Option<u64> {
        u64::try_from(self.scale_to(0).coefficient).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parts() {
        let r = FixedPoint::from_parts("97123450000", 0).unwrap();
        assert_eq!(r.to_string(), "97123450000");
        assert_eq!(
            FixedPoint::from_parts("105", 2).unwrap().to_string(),
            "1.05"
        );
        assert_eq!(FixedPoint::from_parts("5", 3).unwrap().to_string(), "0.005");
        assert_eq!(
            FixedPoint::from_decimal(Decimal::new(9_712_345, 2))
                .unwrap()
                .to_string(),
            "97123.45"
        );
        assert!(matches!(
            FixedPoint::from_parts("1e5", 0),
            Err(PricingError::Coefficient(_))
        ));
        assert!(matches!(
            FixedPoint::from_parts("-5", 0),
            Err(PricingError::Coefficient(_))
        ));
        assert!(matches!(
            FixedPoint::from_parts("5", 19),
            Err(PricingError::Scale(19))
        ));
    }

    #[test]
    fn scale_to_truncates_down_and_is_exact_up() {
        let r = FixedPoint::from_parts("12345", 3).unwrap();
        assert_eq!(r.scale_to(1).coefficient(), "123");
        assert_eq!(r.scale_to(5).coefficient(), "1234500");
        assert_eq!(r.to_u64_floor(), Some(12));
    }
}
