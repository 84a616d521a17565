//! A condition on a number, as SREs write it next to a query: `< 0.01`, `>= 1`, `== 1`,
//! `!= 0`, `within [0.5, 2]`. Parsed once, from the plan, so a typo is the plan's error and
//! never a probe that silently cannot pass.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Compare(Op, f64),
    /// Inclusive bounds.
    Within(f64, f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

impl Threshold {
    /// Whether `value` meets the condition. NaN meets none but `!=`: a ratio of 0/0 is not
    /// evidence of health.
    pub fn holds(&self, value: f64) -> bool {
        match *self {
            Threshold::Compare(op, bound) => match op {
                Op::Lt => value < bound,
                Op::Le => value <= bound,
                Op::Gt => value > bound,
                Op::Ge => value >= bound,
                Op::Eq => value == bound,
                Op::Ne => value != bound,
            },
            Threshold::Within(low, high) => (low..=high).contains(&value),
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Threshold::Compare(op, v) => write!(f, "{} {v}", op.symbol()),
            Threshold::Within(a, b) => write!(f, "within [{a}, {b}]"),
        }
    }
}

pub const SYNTAX: &str = "`< 0.01`, `<= 0.5`, `> 0`, `>= 1`, `== 1`, `!= 0` or `within [0.5, 2]`";

impl FromStr for Threshold {
    type Err = String;

    fn from_str(text: &str) -> Result<Threshold, String> {
        let s = text.trim();
        let invalid = |why: &str| format!("invalid condition `{text}`: {why}; write {SYNTAX}");
        if let Some(rest) = s.strip_prefix("within") {
            let inner = rest
                .trim()
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .ok_or_else(|| invalid("`within` takes bounds in brackets"))?;
            let (low, high) = inner.split_once(',').ok_or_else(|| invalid("`within` takes two bounds"))?;
            let (low, high) = (number(low).map_err(|e| invalid(&e))?, number(high).map_err(|e| invalid(&e))?);
            if low > high {
                return Err(invalid("the lower bound is above the upper one"));
            }
            return Ok(Threshold::Within(low, high));
        }
        // Two-character operators first, so `<=` is not read as `<` and `=0`.
        let ops = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        let (op, rest) = ops
            .iter()
            .find_map(|(sym, op)| s.strip_prefix(sym).map(|rest| (*op, rest)))
            .ok_or_else(|| invalid("it must start with an operator"))?;
        Ok(Threshold::Compare(op, number(rest).map_err(|e| invalid(&e))?))
    }
}

fn number(text: &str) -> Result<f64, String> {
    let t = text.trim();
    match t.parse::<f64>() {
        Ok(v) if v.is_nan() => Err("NaN is not a bound".into()),
        Ok(v) => Ok(v),
        Err(_) => Err(format!("`{t}` is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_people_write() {
        assert_eq!("< 0.01".parse(), Ok(Threshold::Compare(Op::Lt, 0.01)));
        assert_eq!("<=0.5".parse(), Ok(Threshold::Compare(Op::Le, 0.5)));
        assert_eq!("== 1".parse(), Ok(Threshold::Compare(Op::Eq, 1.0)));
        assert_eq!(" != 0 ".parse(), Ok(Threshold::Compare(Op::Ne, 0.0)));
        assert_eq!("within [0.5, 2]".parse(), Ok(Threshold::Within(0.5, 2.0)));
        assert_eq!("within[1e-3,+Inf]".parse(), Ok(Threshold::Within(0.001, f64::INFINITY)));
    }

    #[test]
    fn refuses_with_the_syntax() {
        for bad in ["0.01", "=< 1", "< abc", "within [2, 1]", "within 1, 2", "< NaN", ""] {
            let e = bad.parse::<Threshold>().unwrap_err();
            assert!(e.contains(SYNTAX), "{bad}: {e}");
        }
    }

    #[test]
    fn judges_values() {
        let lt: Threshold = "< 0.05".parse().unwrap();
        assert!(lt.holds(0.01) && !lt.holds(0.05) && !lt.holds(f64::NAN));
        let within: Threshold = "within [1, 2]".parse().unwrap();
        assert!(within.holds(1.0) && within.holds(2.0) && !within.holds(2.5));
        assert!("!= 0".parse::<Threshold>().unwrap().holds(f64::NAN));
    }
}
