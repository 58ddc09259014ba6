//! Arithmetic on stored numbers that stays exact.
//!
//! Integers are computed as integers over the whole `i64` and `u64` range
//! (through `i128`, so `u64::MAX - 1 + 1` works and overflow is an error,
//! never a wrap or a silent float); as soon as either side is a float the
//! result is an `f64`. A result JSON cannot hold (infinite, NaN) is an error.

use serde_json::Number;

/// A number to add, multiply or divide by; made from any Rust integer or
/// float (`state.incr("robot.count", 1)`, `state.mul("robot.gain", 0.5)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Operand {
    /// A signed integer.
    Int(i64),
    /// An unsigned integer (for values above `i64::MAX`).
    UInt(u64),
    /// A float.
    Float(f64),
}

macro_rules! operand_from {
    ($variant:ident as $target:ty: $($ty:ty),*) => {$(
        impl From<$ty> for Operand {
            fn from(n: $ty) -> Operand {
                Operand::$variant(n as $target)
            }
        }
    )*};
}

operand_from!(Int as i64: i8, i16, i32, i64, isize);
operand_from!(UInt as u64: u8, u16, u32, u64, usize);
operand_from!(Float as f64: f32, f64);

/// Which operation [`apply`] performs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Add => "+",
            Op::Sub => "-",
            Op::Mul => "*",
            Op::Div => "/",
        }
    }
}

#[derive(Clone, Copy)]
enum Exact {
    Int(i128),
    Float(f64),
}

impl Exact {
    fn of(n: &Number) -> Exact {
        if let Some(i) = n.as_i64() {
            Exact::Int(i.into())
        } else if let Some(u) = n.as_u64() {
            Exact::Int(u.into())
        } else {
            Exact::Float(n.as_f64().unwrap_or(f64::NAN))
        }
    }

    fn of_operand(operand: Operand) -> Exact {
        match operand {
            Operand::Int(i) => Exact::Int(i.into()),
            Operand::UInt(u) => Exact::Int(u.into()),
            Operand::Float(f) => Exact::Float(f),
        }
    }

    fn float(self) -> f64 {
        match self {
            Exact::Int(i) => i as f64,
            Exact::Float(f) => f,
        }
    }
}

/// `value op operand`, or why it cannot be done.
pub(crate) fn apply(value: &Number, op: Op, operand: Operand) -> Result<Number, String> {
    let (a, b) = (Exact::of(value), Exact::of_operand(operand));
    let is_zero = match b {
        Exact::Int(i) => i == 0,
        Exact::Float(f) => f == 0.0,
    };
    if matches!(op, Op::Div) && is_zero {
        return Err("division by zero".into());
    }
    if let (Exact::Int(a), Exact::Int(b)) = (a, b) {
        let exact = match op {
            Op::Add => a.checked_add(b),
            Op::Sub => a.checked_sub(b),
            Op::Mul => a.checked_mul(b),
            Op::Div if a % b == 0 => Some(a / b),
            Op::Div => None,
        };
        match (op, exact) {
            (_, Some(result)) => return integer(result),
            // An inexact integer division gives a float, as in most languages' `/`.
            (Op::Div, None) => {}
            (_, None) => return Err(format!("{a} {} {b} overflows", op.symbol())),
        }
    }
    let (a, b) = (a.float(), b.float());
    let result = match op {
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div => a / b,
    };
    Number::from_f64(result).ok_or_else(|| format!("{a} {} {b} is {result}, which JSON cannot hold", op.symbol()))
}

fn integer(n: i128) -> Result<Number, String> {
    if let Ok(i) = i64::try_from(n) {
        Ok(i.into())
    } else if let Ok(u) = u64::try_from(n) {
        Ok(u.into())
    } else {
        Err(format!("{n} is outside the 64-bit integer range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(value: Number, op: Op, operand: impl Into<Operand>) -> Result<Number, String> {
        apply(&value, op, operand.into())
    }

    #[test]
    fn integers_stay_exact_over_the_full_range() {
        assert_eq!(run((u64::MAX - 1).into(), Op::Add, 1).unwrap(), Number::from(u64::MAX));
        let error = run(i64::MIN.into(), Op::Add, -1i64).unwrap_err();
        assert_eq!(error, "-9223372036854775809 is outside the 64-bit integer range");
        assert!(run(i64::MIN.into(), Op::Sub, u64::MAX).unwrap_err().contains("outside"));
        assert!(run(u64::MAX.into(), Op::Add, 1).is_err());
        assert_eq!(run(i64::MAX.into(), Op::Add, 1).unwrap(), Number::from(1u64 << 63));
        assert_eq!(run(7.into(), Op::Mul, -3).unwrap(), Number::from(-21));
        assert_eq!(run(12.into(), Op::Div, 4).unwrap(), Number::from(3));
        assert_eq!(run(7.into(), Op::Div, 2).unwrap(), Number::from_f64(3.5).unwrap());
    }

    #[test]
    fn floats_and_errors() {
        let f = |x: f64| Number::from_f64(x).unwrap();
        assert_eq!(run(f(0.1), Op::Add, 0.2).unwrap(), f(0.1 + 0.2));
        assert_eq!(run(1.into(), Op::Add, 0.5).unwrap(), f(1.5));
        assert_eq!(run(f(2.0), Op::Mul, 3).unwrap(), f(6.0));
        assert!(run(1.into(), Op::Div, 0).is_err());
        assert!(run(f(1.0), Op::Div, 0.0).is_err());
        assert!(run(f(f64::MAX), Op::Mul, 2).is_err());
    }
}
