//! A YAML loader that keeps the source position of every node.
//!
//! serde's YAML deserializers stop at the first error and forget positions; the plan
//! compiler needs `file:line:column` for *every* problem it finds, so plans are first
//! loaded into this small spanned tree and checked from there.

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::collections::HashMap;

/// A 1-based line and column in the plan source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    fn from_span(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            col: span.start.col() + 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys are kept as nodes so that errors about a key point at the key itself.
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: NodeValue,
}

#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries().iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
    }

    /// The key node of `key`, for errors about the key rather than its value.
    pub fn key_node(&self, key: &str) -> Option<&Node> {
        self.entries().iter().find(|(k, _)| k.as_str() == Some(key)).map(|(k, _)| k)
    }

    pub fn entries(&self) -> &[(Node, Node)] {
        match &self.value {
            NodeValue::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn items(&self) -> &[Node] {
        match &self.value {
            NodeValue::Seq(items) => items,
            _ => &[],
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The position of the node at a JSON-pointer-like path of keys and indexes,
    /// or of the deepest existing ancestor.
    pub fn pos_at(&self, path: &[PathSegment]) -> Pos {
        let mut node = self;
        for segment in path {
            let next = match segment {
                PathSegment::Key(k) => node.get(k),
                PathSegment::Index(i) => node.items().get(*i),
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node.pos
    }

    pub fn type_name(&self) -> &'static str {
        match self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "boolean",
            NodeValue::Int(_) => "integer",
            NodeValue::Float(_) => "number",
            NodeValue::Str(_) => "string",
            NodeValue::Seq(_) => "list",
            NodeValue::Map(_) => "mapping",
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Int(i) => Value::from(*i),
            NodeValue::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            NodeValue::Str(s) => Value::String(s.clone()),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => Value::Object(entries.iter().map(|(k, v)| (k.scalar_text(), v.to_json())).collect()),
        }
    }

    /// A scalar as text (used for mapping keys, which YAML allows to be any scalar).
    pub fn scalar_text(&self) -> String {
        match &self.value {
            NodeValue::Null => "null".into(),
            NodeValue::Bool(b) => b.to_string(),
            NodeValue::Int(i) => i.to_string(),
            NodeValue::Float(f) => f.to_string(),
            NodeValue::Str(s) => s.clone(),
            NodeValue::Seq(_) | NodeValue::Map(_) => "<complex key>".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

/// Parses one YAML document. An empty document is an error: a plan must say something.
pub fn parse(source: &str) -> Result<Node, YamlError> {
    let mut loader = Loader {
        parser: Parser::new_from_str(source),
        anchors: HashMap::new(),
    };
    loop {
        let (event, span) = loader.next()?;
        match event {
            Event::StreamStart | Event::DocumentStart(_) => continue,
            Event::StreamEnd => {
                return Err(YamlError {
                    pos: Pos::from_span(&span),
                    message: "the file is empty".into(),
                });
            }
            other => {
                let node = loader.node(other, span)?;
                let (after, after_span) = loader.next()?;
                return match after {
                    Event::DocumentEnd | Event::StreamEnd => match loader.next() {
                        Ok((Event::DocumentStart(_), s)) => Err(YamlError {
                            pos: Pos::from_span(&s),
                            message: "a plan file holds exactly one YAML document; split the others into their own files".into(),
                        }),
                        _ => Ok(node),
                    },
                    _ => Err(YamlError {
                        pos: Pos::from_span(&after_span),
                        message: "unexpected content after the document".into(),
                    }),
                };
            }
        }
    }
}

struct Loader<'a> {
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    anchors: HashMap<usize, Node>,
}

impl<'a> Loader<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        match self.parser.next_event() {
            Some(Ok(pair)) => Ok(pair),
            Some(Err(e)) => Err(YamlError {
                pos: Pos {
                    line: e.marker().line(),
                    col: e.marker().col() + 1,
                },
                message: format!("YAML syntax error: {}", e.info()),
            }),
            None => Err(YamlError {
                pos: Pos::default(),
                message: "unexpected end of YAML input".into(),
            }),
        }
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }

    fn node(&mut self, event: Event<'a>, span: Span) -> Result<Node, YamlError> {
        let pos = Pos::from_span(&span);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let value = if style == ScalarStyle::Plain && tag.is_none() {
                    resolve_plain(&text)
                } else {
                    NodeValue::Str(text.into_owned())
                };
                let node = Node { pos, value };
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (ev, sp) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(ev, sp)?);
                }
                let node = Node {
                    pos,
                    value: NodeValue::Seq(items),
                };
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::MappingStart(anchor, _) => {
                let mut entries: Vec<(Node, Node)> = Vec::new();
                loop {
                    let (ev, sp) = self.next()?;
                    if matches!(ev, Event::MappingEnd) {
                        break;
                    }
                    let key = self.node(ev, sp)?;
                    let (vev, vsp) = self.next()?;
                    let value = self.node(vev, vsp)?;
                    if let Some((first, _)) = entries.iter().find(|(k, _)| k.value == key.value) {
                        return Err(YamlError {
                            pos: key.pos,
                            message: format!(
                                "duplicate key `{}` (first defined at line {}); remove one of them",
                                key.scalar_text(),
                                first.pos.line
                            ),
                        });
                    }
                    entries.push((key, value));
                }
                let node = Node {
                    pos,
                    value: NodeValue::Map(entries),
                };
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::Alias(anchor) => match self.anchors.get(&anchor) {
                Some(node) => Ok(Node { pos, ..node.clone() }),
                None => Err(YamlError {
                    pos,
                    message: "alias refers to an unknown anchor".into(),
                }),
            },
            other => Err(YamlError {
                pos,
                message: format!("unexpected YAML event {other:?}"),
            }),
        }
    }
}

/// YAML 1.2 core schema resolution of plain scalars.
fn resolve_plain(text: &str) -> NodeValue {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return NodeValue::Null,
        "true" | "True" | "TRUE" => return NodeValue::Bool(true),
        "false" | "False" | "FALSE" => return NodeValue::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return NodeValue::Int(i);
    }
    if let Some(hex) = text.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return NodeValue::Int(i);
    }
    let looks_numeric = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '-' || c == '+' || c == '.');
    if looks_numeric
        && text.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
        && let Ok(f) = text.parse::<f64>()
    {
        return NodeValue::Float(f);
    }
    NodeValue::Str(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positions_and_types() {
        let node = parse("a: 1\nb:\n  - x\n  - true\nc: '5'\n").unwrap();
        assert_eq!(node.get("a").unwrap().value, NodeValue::Int(1));
        let b = node.get("b").unwrap();
        assert_eq!(b.items()[0].pos, Pos { line: 3, col: 5 });
        assert_eq!(b.items()[1].value, NodeValue::Bool(true));
        assert_eq!(node.get("c").unwrap().value, NodeValue::Str("5".into()));
        assert_eq!(node.key_node("c").unwrap().pos, Pos { line: 5, col: 1 });
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.message.contains("YAML syntax error"), "{err:?}");
        assert!(err.pos.line >= 1);
    }

    #[test]
    fn rejects_duplicate_keys() {
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.pos.line, 2);
        assert!(err.message.contains("duplicate key `a`"));
    }

    #[test]
    fn resolves_aliases() {
        let node = parse("base: &b {x: 1}\nother: *b\n").unwrap();
        assert_eq!(node.get("other").unwrap().get("x").unwrap().value, NodeValue::Int(1));
    }
}
