//! TOML text → a located value tree (`Node`) that keeps the byte span of every key and value.
//!
//! Owns the only contact with the `toml` crate's deserializer. The tree exists so that each
//! section can be deserialized on its own (one bad key does not hide the others) and so that
//! every problem can name its line. Spans come through `toml`'s spanned-value protocol; values
//! the protocol leaves unspanned (implicit tables) simply carry no span. Must not interpret any
//! key: the schema decides what is valid.

use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

// `toml`'s spanned-value protocol (serde_spanned 0.6). If these names ever change, spans vanish
// and the line-number tests fail; nothing silently misparses.
const SPANNED_NAME: &str = "$__serde_spanned_private_Spanned";
const SPANNED_START: &str = "$__serde_spanned_private_start";
const SPANNED_FIELDS: &[&str] = &[
    SPANNED_START,
    "$__serde_spanned_private_end",
    "$__serde_spanned_private_value",
];
// `toml` hands a datetime to `deserialize_any` as a one-entry map with this key.
const DATETIME_KEY: &str = "$__toml_private_datetime";

pub(crate) type Span = Option<Range<usize>>;

/// A value (or key) and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Located<T> {
    pub span: Span,
    pub value: T,
}

pub(crate) type Entry = (Located<String>, Located<Node>);

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Never valid in trunkgate's schema; kept so the error can say what was found.
    Datetime(String),
    Array(Vec<Located<Node>>),
    /// Entries in file order.
    Table(Vec<Entry>),
}

impl Node {
    /// What the value is, for "expected X, found Y" messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Node::Str(_) => "a string",
            Node::Int(_) => "an integer",
            Node::Float(_) => "a float",
            Node::Bool(_) => "a boolean",
            Node::Datetime(_) => "a date/time",
            Node::Array(_) => "an array",
            Node::Table(_) => "a table",
        }
    }
}

/// Parses a whole document into its root table entries.
pub(crate) fn parse_document(text: &str) -> Result<Vec<Entry>, toml::de::Error> {
    match toml::from_str::<Node>(text)? {
        Node::Table(entries) => Ok(entries),
        // A TOML document is always a table; anything else would be a toml crate bug.
        other => Err(de::Error::custom(format!(
            "expected a table at the top level, found {}",
            other.kind()
        ))),
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

impl<'de> Deserialize<'de> for Located<Node> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, LocatedNodeVisitor)
    }
}

impl<'de> Deserialize<'de> for Located<String> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, LocatedKeyVisitor)
    }
}

fn unspanned<T>(value: T) -> Located<T> {
    Located { span: None, value }
}

/// Reads the rest of a spanned-protocol map whose start key has been consumed.
fn rest_of_spanned<'de, A, T>(map: &mut A) -> Result<Located<T>, A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de>,
{
    let start: usize = map.next_value()?;
    let _end_key: Option<String> = map.next_key()?;
    let end: usize = map.next_value()?;
    let _value_key: Option<String> = map.next_key()?;
    let value: T = map.next_value()?;
    Ok(Located {
        span: Some(start..end),
        value,
    })
}

/// A map that is either a datetime or a real table whose first key has been read.
fn table_or_datetime<'de, A: MapAccess<'de>>(
    first: Located<String>,
    map: &mut A,
) -> Result<Node, A::Error> {
    if first.value == DATETIME_KEY {
        return Ok(Node::Datetime(map.next_value()?));
    }
    let mut entries = vec![(first, map.next_value()?)];
    while let Some(key) = map.next_key::<Located<String>>()? {
        let value = map.next_value()?;
        entries.push((key, value));
    }
    Ok(Node::Table(entries))
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        i64::try_from(v)
            .map(Node::Int)
            .map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        match map.next_key::<Located<String>>()? {
            None => Ok(Node::Table(Vec::new())),
            Some(first) => table_or_datetime(first, &mut map),
        }
    }
}

struct LocatedNodeVisitor;

impl<'de> Visitor<'de> for LocatedNodeVisitor {
    type Value = Located<Node>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(unspanned(Node::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(unspanned(Node::Int(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        NodeVisitor.visit_u64(v).map(unspanned)
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(unspanned(Node::Float(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(unspanned(Node::Str(v.to_string())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        NodeVisitor.visit_seq(seq).map(unspanned)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        match map.next_key::<Located<String>>()? {
            None => Ok(unspanned(Node::Table(Vec::new()))),
            Some(first) if first.value == SPANNED_START => rest_of_spanned(&mut map),
            Some(first) => table_or_datetime(first, &mut map).map(unspanned),
        }
    }
}

struct LocatedKeyVisitor;

impl<'de> Visitor<'de> for LocatedKeyVisitor {
    type Value = Located<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(unspanned(v.to_string()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let _start_key: Option<String> = map.next_key()?;
        rest_of_spanned(&mut map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(entries: &'a [Entry], key: &str) -> Option<&'a Located<Node>> {
        entries.iter().find(|(k, _)| k.value == key).map(|(_, v)| v)
    }

    #[test]
    fn keys_and_values_carry_spans() {
        let text = "[sip]\nuser_agent = \"x\"\n";
        let root = parse_document(text).unwrap_or_default();
        let Some(Node::Table(sip)) = find(&root, "sip").map(|n| &n.value) else {
            panic!("no sip table in {root:?}");
        };
        let (key, value) = &sip[0];
        assert_eq!(key.value, "user_agent");
        assert_eq!(key.span, Some(6..16));
        assert_eq!(value.value, Node::Str("x".into()));
        assert_eq!(value.span, Some(19..22));
    }

    #[test]
    fn implicit_tables_and_datetimes() {
        let text = "[a.b]\nwhen = 1979-05-27T07:32:00Z\nlist = [1, [2]]\n";
        let root = parse_document(text).unwrap_or_default();
        let Some(Node::Table(a)) = find(&root, "a").map(|n| &n.value) else {
            panic!("no a in {root:?}");
        };
        let Some(Node::Table(b)) = find(a, "b").map(|n| &n.value) else {
            panic!("no a.b in {a:?}");
        };
        assert!(matches!(
            find(b, "when").map(|n| &n.value),
            Some(Node::Datetime(_))
        ));
        let Some(Node::Array(list)) = find(b, "list").map(|n| &n.value) else {
            panic!("no list in {b:?}");
        };
        assert_eq!(list.len(), 2);
        assert!(list.iter().all(|item| item.span.is_some()));
    }

    #[test]
    fn syntax_errors_have_spans() {
        let err = parse_document("a = \n").err();
        assert!(err.and_then(|e| e.span()).is_some());
    }
}
