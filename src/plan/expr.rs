//! The `${{ … }}` expression language: paths, literals, comparisons and boolean logic.
//!
//! Grammar (lowest precedence first):
//! `or := and ('||' and)*`, `and := cmp ('&&' cmp)*`,
//! `cmp := unary (('=='|'!='|'<'|'<='|'>'|'>=') unary)?`, `unary := '!' unary | primary`,
//! `primary := literal | path | '(' or ')'`, `path := ident ('.' ident | '[' literal ']')*`.
//!
//! Paths are checked statically by the compiler (see [`Expr::paths`]); evaluation reads
//! them from an [`Scope`] and reports whether a secret (`env.*`) was read.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    Path(Path),
    Not(Box<Expr>),
    Binary(Box<Expr>, BinaryOp, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A dotted path such as `steps.restore.outputs.dsn`; `offset` is its byte offset in the
/// expression text, for error positions.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub segments: Vec<String>,
    pub offset: usize,
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.segments.join("."))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub offset: usize,
    pub message: String,
}

pub fn parse(text: &str) -> Result<Expr, ParseError> {
    let tokens = tokenize(text)?;
    let mut parser = ExprParser {
        tokens,
        at: 0,
        len: text.len(),
    };
    let expr = parser.or()?;
    match parser.peek() {
        None => Ok(expr),
        Some((tok, offset)) => Err(ParseError {
            offset,
            message: format!("unexpected `{}` after the expression", tok.text()),
        }),
    }
}

impl Expr {
    /// Every path the expression reads, for static checks.
    pub fn paths(&self) -> Vec<&Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut out);
        out
    }

    fn collect_paths<'a>(&'a self, out: &mut Vec<&'a Path>) {
        match self {
            Expr::Literal(_) => {}
            Expr::Path(p) => out.push(p),
            Expr::Not(e) => e.collect_paths(out),
            Expr::Binary(a, _, b) => {
                a.collect_paths(out);
                b.collect_paths(out);
            }
        }
    }

    pub fn eval(&self, scope: &dyn Scope) -> Result<Evaluated, String> {
        let mut secret = false;
        let value = self.eval_inner(scope, &mut secret)?;
        Ok(Evaluated { value, secret })
    }

    fn eval_inner(&self, scope: &dyn Scope, secret: &mut bool) -> Result<Value, String> {
        Ok(match self {
            Expr::Literal(v) => v.clone(),
            Expr::Path(p) => {
                let looked_up = scope.lookup(&p.segments)?;
                *secret |= looked_up.secret;
                looked_up.value
            }
            Expr::Not(e) => Value::Bool(!truthy(&e.eval_inner(scope, secret)?)),
            Expr::Binary(a, BinaryOp::Or, b) => {
                let left = a.eval_inner(scope, secret)?;
                if truthy(&left) { left } else { b.eval_inner(scope, secret)? }
            }
            Expr::Binary(a, BinaryOp::And, b) => {
                let left = a.eval_inner(scope, secret)?;
                if !truthy(&left) { left } else { b.eval_inner(scope, secret)? }
            }
            Expr::Binary(a, op, b) => {
                let left = a.eval_inner(scope, secret)?;
                let right = b.eval_inner(scope, secret)?;
                Value::Bool(compare(&left, *op, &right))
            }
        })
    }
}

/// A value and whether computing it read a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    pub value: Value,
    pub secret: bool,
}

/// Where expression paths are resolved at run time.
pub trait Scope {
    fn lookup(&self, path: &[String]) -> Result<Evaluated, String>;
}

/// Truthiness as in most workflow languages: null, false, 0, "" and "false" are false.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !(s.is_empty() || s == "false"),
        Value::Array(_) | Value::Object(_) => true,
    }
}

fn compare(left: &Value, op: BinaryOp, right: &Value) -> bool {
    use std::cmp::Ordering;
    let ordering = match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().zip(b.as_f64()).and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        // A number compared with a numeric string (e.g. an exec output) compares as numbers.
        (Value::Number(a), Value::String(b)) => a.as_f64().zip(b.trim().parse::<f64>().ok()).and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::String(a), Value::Number(b)) => a.trim().parse::<f64>().ok().zip(b.as_f64()).and_then(|(a, b)| a.partial_cmp(&b)),
        _ => (left == right).then_some(Ordering::Equal),
    };
    match op {
        BinaryOp::Eq => ordering == Some(Ordering::Equal),
        BinaryOp::Ne => ordering != Some(Ordering::Equal),
        BinaryOp::Lt => ordering == Some(Ordering::Less),
        BinaryOp::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
        BinaryOp::Gt => ordering == Some(Ordering::Greater),
        BinaryOp::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
        BinaryOp::Or | BinaryOp::And => unreachable!("handled by eval_inner"),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(f64),
    Op(&'static str),
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Ident(s) => s.clone(),
            Token::Str(s) => format!("'{s}'"),
            Token::Num(n) => n.to_string(),
            Token::Op(o) => (*o).to_string(),
        }
    }
}

const OPERATORS: [&str; 14] = ["==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")", ".", "[", "]"];

fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, ParseError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '\'' || c == '"' {
            let end = text[i + 1..].find(c).ok_or_else(|| ParseError {
                offset: i,
                message: format!("unterminated string starting with {c}"),
            })?;
            out.push((Token::Str(text[i + 1..i + 1 + end].to_owned()), i));
            i += end + 2;
            continue;
        }
        if c.is_ascii_digit() || (c == '-' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let start = i;
            i += 1;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            let number = text[start..i].parse::<f64>().map_err(|_| ParseError {
                offset: start,
                message: format!("`{}` is not a number", &text[start..i]),
            })?;
            out.push((Token::Num(number), start));
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'-') {
                i += 1;
            }
            out.push((Token::Ident(text[start..i].to_owned()), start));
            continue;
        }
        match OPERATORS.iter().find(|op| text[i..].starts_with(**op)) {
            Some(op) => {
                out.push((Token::Op(op), i));
                i += op.len();
            }
            None => {
                return Err(ParseError {
                    offset: i,
                    message: format!("unexpected character `{c}`"),
                });
            }
        }
    }
    Ok(out)
}

struct ExprParser {
    tokens: Vec<(Token, usize)>,
    at: usize,
    len: usize,
}

impl ExprParser {
    fn peek(&self) -> Option<(Token, usize)> {
        self.tokens.get(self.at).cloned()
    }

    fn eat_op(&mut self, op: &str) -> bool {
        if matches!(self.tokens.get(self.at), Some((Token::Op(o), _)) if *o == op) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn offset(&self) -> usize {
        self.tokens.get(self.at).map_or(self.len, |(_, o)| *o)
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.and()?;
        while self.eat_op("||") {
            left = Expr::Binary(Box::new(left), BinaryOp::Or, Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.cmp()?;
        while self.eat_op("&&") {
            left = Expr::Binary(Box::new(left), BinaryOp::And, Box::new(self.cmp()?));
        }
        Ok(left)
    }

    fn cmp(&mut self) -> Result<Expr, ParseError> {
        let left = self.unary()?;
        for (text, op) in [
            ("==", BinaryOp::Eq),
            ("!=", BinaryOp::Ne),
            ("<=", BinaryOp::Le),
            (">=", BinaryOp::Ge),
            ("<", BinaryOp::Lt),
            (">", BinaryOp::Gt),
        ] {
            if self.eat_op(text) {
                return Ok(Expr::Binary(Box::new(left), op, Box::new(self.unary()?)));
            }
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.eat_op("!") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let offset = self.offset();
        let Some((token, _)) = self.peek() else {
            return Err(ParseError {
                offset,
                message: "expected a value, found the end of the expression".into(),
            });
        };
        self.at += 1;
        match token {
            Token::Str(s) => Ok(Expr::Literal(Value::String(s))),
            Token::Num(n) => Ok(Expr::Literal(number(n))),
            Token::Op("(") => {
                let inner = self.or()?;
                if !self.eat_op(")") {
                    return Err(ParseError {
                        offset: self.offset(),
                        message: "expected `)`".into(),
                    });
                }
                Ok(inner)
            }
            Token::Ident(word) => match word.as_str() {
                "true" => Ok(Expr::Literal(Value::Bool(true))),
                "false" => Ok(Expr::Literal(Value::Bool(false))),
                "null" => Ok(Expr::Literal(Value::Null)),
                _ => self.path(word, offset),
            },
            Token::Op(op) => Err(ParseError {
                offset,
                message: format!("expected a value, found `{op}`"),
            }),
        }
    }

    fn path(&mut self, first: String, offset: usize) -> Result<Expr, ParseError> {
        let mut segments = vec![first];
        loop {
            if self.eat_op(".") {
                match self.peek() {
                    Some((Token::Ident(name), _)) => {
                        self.at += 1;
                        segments.push(name);
                    }
                    Some((Token::Num(n), _)) if n.fract() == 0.0 => {
                        self.at += 1;
                        segments.push((n as i64).to_string());
                    }
                    _ => {
                        return Err(ParseError {
                            offset: self.offset(),
                            message: "expected a name after `.`".into(),
                        });
                    }
                }
            } else if self.eat_op("[") {
                match self.peek() {
                    Some((Token::Str(s), _)) => segments.push(s),
                    Some((Token::Num(n), _)) if n.fract() == 0.0 && n >= 0.0 => segments.push((n as i64).to_string()),
                    _ => {
                        return Err(ParseError {
                            offset: self.offset(),
                            message: "expected a quoted key or an index inside `[ ]`".into(),
                        });
                    }
                }
                self.at += 1;
                if !self.eat_op("]") {
                    return Err(ParseError {
                        offset: self.offset(),
                        message: "expected `]`".into(),
                    });
                }
            } else {
                return Ok(Expr::Path(Path { segments, offset }));
            }
        }
    }
}

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct MapScope(Value);
    impl Scope for MapScope {
        fn lookup(&self, path: &[String]) -> Result<Evaluated, String> {
            let mut v = &self.0;
            for s in path {
                v = v.get(s).ok_or_else(|| format!("no {s}"))?;
            }
            Ok(Evaluated {
                value: v.clone(),
                secret: path[0] == "env",
            })
        }
    }

    #[test]
    fn parses_and_evaluates_logic() {
        let scope = MapScope(json!({"params": {"region": "eu", "n": 3}, "env": {"TOKEN": "x"}}));
        let e = parse("params.region == 'eu' && !(params.n < 2)").unwrap();
        assert_eq!(
            e.eval(&scope).unwrap(),
            Evaluated {
                value: json!(true),
                secret: false
            }
        );
        let e = parse("env.TOKEN").unwrap();
        assert!(e.eval(&scope).unwrap().secret);
        let e = parse("params['region'] != \"us\" || false").unwrap();
        assert_eq!(e.eval(&scope).unwrap().value, json!(true));
    }

    #[test]
    fn collects_paths() {
        let e = parse("steps.a.outputs.x == params.y").unwrap();
        let paths: Vec<String> = e.paths().iter().map(|p| p.to_string()).collect();
        assert_eq!(paths, ["steps.a.outputs.x", "params.y"]);
    }

    #[test]
    fn reports_parse_errors_with_offsets() {
        let err = parse("params.a ==").unwrap_err();
        assert!(err.message.contains("end of the expression"));
        let err = parse("params.a = 1").unwrap_err();
        assert_eq!(err.offset, 9);
        assert!(parse("'open").is_err());
        assert!(parse("a b").unwrap_err().message.contains("after the expression"));
    }

    #[test]
    fn numeric_strings_compare_as_numbers() {
        let scope = MapScope(json!({"x": "10"}));
        assert_eq!(parse("x > 9").unwrap().eval(&scope).unwrap().value, json!(true));
    }
}
