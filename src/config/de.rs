//! A serde `Deserializer` over the located tree, so the raw schema can be plain derived types
//! while every error still knows its key path and byte span.
//!
//! Owns: `Sp<T>` (a value with its span, via a private protocol only this deserializer speaks),
//! error location (innermost key wins), operator-friendly serde messages, and
//! `deserialize_collecting`, which retries after removing each offending key so that one run
//! reports every type error and unknown key in a section. Must not validate meaning.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess};
use serde::de::{Deserialize, Deserializer, Unexpected, Visitor};

use super::tree::{Entry, Located, Node, Span};

const SP_NAME: &str = "$__trunkgate_config_Sp";
const SP_FIELDS: &[&str] = &["start", "end", "value"];
const NO_OFFSET: u64 = u64::MAX;

/// A raw-schema value together with the span it was written at (`None` for implicit tables).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sp<T> {
    pub span: Span,
    pub value: T,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SP_NAME, SP_FIELDS, SpVisitor(PhantomData))
    }
}

struct SpVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for SpVisitor<T> {
    type Value = Sp<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a located value")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Sp<T>, A::Error> {
        let missing = || de::Error::custom("internal: incomplete located value");
        let start: u64 = seq.next_element()?.ok_or_else(missing)?;
        let end: u64 = seq.next_element()?.ok_or_else(missing)?;
        let value: T = seq.next_element()?.ok_or_else(missing)?;
        let span = match (usize::try_from(start), usize::try_from(end)) {
            (Ok(s), Ok(e)) if start != NO_OFFSET => Some(s..e),
            _ => None,
        };
        Ok(Sp { span, value })
    }
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// Renders `prefix` + segments as `a.b[2]."quoted key"`.
pub(crate) fn render_path(prefix: &str, segs: &[Seg]) -> String {
    let mut out = prefix.to_string();
    for seg in segs {
        match seg {
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&key_text(k));
            }
        }
    }
    out
}

fn key_text(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub(crate) struct DeError {
    pub msg: String,
    /// Path relative to the deserialized unit, and span; set by the innermost node.
    pub at: Option<(Vec<Seg>, Span)>,
}

impl DeError {
    fn locate(mut self, path: &[Seg], span: &Span) -> Self {
        if self.at.is_none() {
            self.at = Some((path.to_vec(), span.clone()));
        }
        self
    }
}

/// Turns serde's type descriptions into words an operator knows.
fn describe(expected: &str) -> String {
    if expected.starts_with("struct ") || expected == "a map" {
        return "a table".to_string();
    }
    match expected {
        "a sequence" => "an array".to_string(),
        "u16" => "an integer from 0 to 65535".to_string(),
        "u32" | "usize" | "u64" => "a non-negative integer".to_string(),
        "a boolean" | "bool" => "true or false".to_string(),
        other => other.to_string(),
    }
}

fn describe_found(unexp: &Unexpected<'_>) -> String {
    match unexp {
        Unexpected::Str(s) => format!("{s:?}"),
        Unexpected::Signed(i) => i.to_string(),
        Unexpected::Unsigned(u) => u.to_string(),
        Unexpected::Map => "a table".to_string(),
        Unexpected::Seq => "an array".to_string(),
        other => other.to_string(),
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            msg: msg.to_string(),
            at: None,
        }
    }
    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format!(
            "expected {}, found {}",
            describe(&exp.to_string()),
            describe_found(&unexp)
        ))
    }
    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format!(
            "expected {}, found {}",
            describe(&exp.to_string()),
            describe_found(&unexp)
        ))
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        // The key itself is already in the path the error is reported under.
        let _ = field;
        Self::custom(format!(
            "unknown key; expected one of: {}",
            expected.join(", ")
        ))
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let list: Vec<String> = expected.iter().map(|v| format!("{v:?}")).collect();
        Self::custom(format!("{variant:?} is not one of {}", list.join(", ")))
    }
    fn missing_field(field: &'static str) -> Self {
        Self::custom(format!("missing required key `{field}`"))
    }
}

/// Deserializer for one located node.
pub(crate) struct NodeDe<'a> {
    node: &'a Located<Node>,
    path: Vec<Seg>,
}

impl<'a> NodeDe<'a> {
    pub(crate) fn new(node: &'a Located<Node>) -> Self {
        NodeDe {
            node,
            path: Vec::new(),
        }
    }

    fn child(&self, seg: Seg, node: &'a Located<Node>) -> NodeDe<'a> {
        let mut path = self.path.clone();
        path.push(seg);
        NodeDe { node, path }
    }
}

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.value {
            Node::Str(s) => visitor.visit_str(s),
            Node::Int(i) => visitor.visit_i64(*i),
            Node::Float(x) => visitor.visit_f64(*x),
            Node::Bool(b) => visitor.visit_bool(*b),
            Node::Datetime(_) => Err(de::Error::invalid_type(
                Unexpected::Other("a date/time"),
                &visitor,
            )),
            Node::Array(items) => visitor.visit_seq(SeqDe {
                parent: &self,
                items,
                next: 0,
            }),
            Node::Table(entries) => visitor.visit_map(MapDe {
                parent: &self,
                entries,
                next: 0,
            }),
        };
        result.map_err(|e| e.locate(&self.path, &self.node.span))
    }

    // TOML has no null: a present key is always `Some`.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let (path, span) = (self.path.clone(), self.node.span.clone());
        visitor.visit_some(self).map_err(|e| e.locate(&path, &span))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == SP_NAME && fields == SP_FIELDS {
            let (start, end) = match &self.node.span {
                Some(r) => (r.start as u64, r.end as u64),
                None => (NO_OFFSET, NO_OFFSET),
            };
            return visitor.visit_seq(SpSeq {
                start: Some(start),
                end: Some(end),
                value: Some(self),
            });
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let result = match &self.node.value {
            Node::Str(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            other => Err(de::Error::custom(format!(
                "expected a string, found {}",
                other.kind()
            ))),
        };
        result.map_err(|e: DeError| e.locate(&self.path, &self.node.span))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct SpSeq<'a> {
    start: Option<u64>,
    end: Option<u64>,
    value: Option<NodeDe<'a>>,
}

impl<'de> SeqAccess<'de> for SpSeq<'_> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        if let Some(start) = self.start.take() {
            return seed.deserialize(start.into_deserializer()).map(Some);
        }
        if let Some(end) = self.end.take() {
            return seed.deserialize(end.into_deserializer()).map(Some);
        }
        match self.value.take() {
            Some(value) => seed.deserialize(value).map(Some),
            None => Ok(None),
        }
    }
}

struct SeqDe<'p, 'a> {
    parent: &'p NodeDe<'a>,
    items: &'a [Located<Node>],
    next: usize,
}

impl<'de> SeqAccess<'de> for SeqDe<'_, '_> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(item) = self.items.get(self.next) else {
            return Ok(None);
        };
        let child = self.parent.child(Seg::Index(self.next), item);
        self.next += 1;
        seed.deserialize(child).map(Some)
    }
}

struct MapDe<'p, 'a> {
    parent: &'p NodeDe<'a>,
    entries: &'a [Entry],
    next: usize,
}

impl<'de> MapAccess<'de> for MapDe<'_, '_> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, _)) = self.entries.get(self.next) else {
            return Ok(None);
        };
        let mut path = self.parent.path.clone();
        path.push(Seg::Key(key.value.clone()));
        seed.deserialize(key.value.as_str().into_deserializer())
            .map(Some)
            .map_err(|e: DeError| e.locate(&path, &key.span))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((key, value)) = self.entries.get(self.next) else {
            return Err(de::Error::custom("internal: value requested past the end"));
        };
        self.next += 1;
        seed.deserialize(self.parent.child(Seg::Key(key.value.clone()), value))
    }
}

/// A located problem found while deserializing a unit, path relative to the unit.
pub(crate) struct UnitProblem {
    pub path: Vec<Seg>,
    pub span: Span,
    pub msg: String,
}

/// Deserializes `T` from `node`, recording every error: after each failure the innermost key
/// holding the bad value is removed and the attempt repeated, so the absent key's default is
/// used and later keys still get checked. Returns `None` if the unit cannot be salvaged (an
/// error at the unit's own level, such as a missing required key).
pub(crate) fn deserialize_collecting<T: DeserializeOwned>(
    node: &Located<Node>,
    problems: &mut Vec<UnitProblem>,
) -> Option<T> {
    let mut node = node.clone();
    // Each retry removes one key, so the number of keys bounds the loop; the cap is a backstop.
    for _ in 0..256 {
        let err = match T::deserialize(NodeDe::new(&node)) {
            Ok(value) => return Some(value),
            Err(err) => err,
        };
        let (path, span) = err.at.unwrap_or((Vec::new(), node.span.clone()));
        let removable = removal_target(&path);
        problems.push(UnitProblem {
            path,
            span,
            msg: err.msg,
        });
        if removable.is_empty() || !remove_key(&mut node, &removable) {
            return None;
        }
    }
    None
}

/// The path of the innermost key containing the error (array indexes are not removed: that
/// would renumber the elements after it and mislabel later problems).
fn removal_target(path: &[Seg]) -> Vec<Seg> {
    let last_key = path.iter().rposition(|s| matches!(s, Seg::Key(_)));
    match last_key {
        Some(i) => path.iter().take(i + 1).cloned().collect(),
        None => Vec::new(),
    }
}

fn remove_key(node: &mut Located<Node>, path: &[Seg]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut cur = node;
    for seg in parents {
        let next = match (seg, &mut cur.value) {
            (Seg::Key(k), Node::Table(entries)) => entries
                .iter_mut()
                .find(|(key, _)| &key.value == k)
                .map(|(_, v)| v),
            (Seg::Index(i), Node::Array(items)) => items.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    match (last, &mut cur.value) {
        (Seg::Key(k), Node::Table(entries)) => {
            let before = entries.len();
            entries.retain(|(key, _)| &key.value != k);
            entries.len() != before
        }
        _ => false,
    }
}
