//! TwiML and Plivo XML answers: a small bounded element tree, then the verbs read off it.
//!
//! Owns: `<Response>` with, in document order, the first of `<Connect><Stream url>` (TwiML:
//! twilio dialect, 8 kHz μ-law, `<Parameter name value>` children), `<Stream>URL</Stream>`
//! (Plivo: dialect plivo, rate and encoding from `contentType`, `extraHeaders`), `<Reject>` or
//! `<Hangup>` (`reason="busy"` → 486, anything else → 603: the platform declined the call, and
//! the caller has not been answered, so there is nothing to hang up). Verbs trunkgate cannot
//! carry out (`<Say>`, `<Play>`, `<Pause>`, `<Start>`, ...) before those are skipped; what comes
//! after the first usable verb is never reached. Element and attribute names match ignoring
//! ASCII case. Plivo's `bidirectional` is not required: trunkgate streams are always two-way.
//! Must not: expand entities other than the five predefined ones and character references,
//! accept a DTD, or nest deeper than [`MAX_DEPTH`].

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::{check_ws_url, clip, parse_content_type, AnswerError, WebhookAnswer};
use crate::core::agent::{AudioEncoding, Dialect};

/// Real answers nest three deep (`Response/Connect/Stream/Parameter` is four).
pub const MAX_DEPTH: usize = 16;
/// How many skipped verb names an error lists.
const MAX_SEEN: usize = 16;

#[derive(Debug, Default)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(name))
    }
}

fn xml_err(reader: &Reader<&[u8]>, detail: impl std::fmt::Display) -> AnswerError {
    AnswerError::Xml {
        position: reader.error_position(),
        detail: clip(&detail.to_string()),
    }
}

fn element(reader: &Reader<&[u8]>, start: &BytesStart<'_>) -> Result<Element, AnswerError> {
    let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| xml_err(reader, e))?;
        let key = String::from_utf8_lossy(attr.key.local_name().as_ref()).into_owned();
        let value = attr
            .decode_and_unescape_value(reader.decoder())
            .map_err(|e| xml_err(reader, e))?;
        attrs.push((key, value.into_owned()));
    }
    Ok(Element {
        name,
        attrs,
        ..Element::default()
    })
}

/// Attaches a finished element to its parent, or makes it the root.
fn attach(
    stack: &mut [Element],
    root: &mut Option<Element>,
    el: Element,
) -> Result<(), AnswerError> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None if root.is_none() => *root = Some(el),
        None => {
            return Err(AnswerError::Xml {
                position: 0,
                detail: "more than one root element".into(),
            })
        }
    }
    Ok(())
}

fn parse_tree(text: &str) -> Result<Element, AnswerError> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let event = reader.read_event().map_err(|e| xml_err(&reader, e))?;
        match event {
            Event::Start(s) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(AnswerError::TooDeep(MAX_DEPTH));
                }
                let el = element(&reader, &s)?;
                stack.push(el);
            }
            Event::Empty(s) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(AnswerError::TooDeep(MAX_DEPTH));
                }
                let el = element(&reader, &s)?;
                attach(&mut stack, &mut root, el)?;
            }
            Event::End(_) => {
                // quick-xml has already checked the end name matches.
                if let Some(el) = stack.pop() {
                    attach(&mut stack, &mut root, el)?;
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| xml_err(&reader, e))?;
                push_text(&reader, &mut stack, &s)?;
            }
            Event::CData(c) => {
                let s = c.decode().map_err(|e| xml_err(&reader, e))?;
                push_text(&reader, &mut stack, &s)?;
            }
            Event::GeneralRef(r) => {
                let ch = r.resolve_char_ref().map_err(|e| xml_err(&reader, e))?;
                let name = r.decode().map_err(|e| xml_err(&reader, e))?;
                let mut buf = [0u8; 4];
                let s = match ch {
                    Some(c) => &*c.encode_utf8(&mut buf),
                    None => resolve_predefined_entity(&name)
                        .ok_or_else(|| xml_err(&reader, format!("unknown entity &{name};")))?,
                };
                push_text(&reader, &mut stack, s)?;
            }
            Event::DocType(_) => return Err(AnswerError::DtdNotAllowed),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(xml_err(&reader, "unclosed element at end of answer"));
    }
    root.ok_or_else(|| xml_err(&reader, "no root element"))
}

fn push_text(reader: &Reader<&[u8]>, stack: &mut [Element], s: &str) -> Result<(), AnswerError> {
    match stack.last_mut() {
        Some(el) => el.text.push_str(s),
        None if s.trim().is_empty() => {}
        None => return Err(xml_err(reader, "text outside the root element")),
    }
    Ok(())
}

pub(super) fn parse(text: &str) -> Result<WebhookAnswer, AnswerError> {
    let root = parse_tree(text)?;
    if !root.is("Response") {
        return Err(AnswerError::NotResponse(clip(&root.name)));
    }
    let mut seen = Vec::new();
    for verb in &root.children {
        if verb.is("Connect") {
            if let Some(stream) = verb.child("Stream") {
                return twiml_stream(stream);
            }
        } else if verb.is("Stream") {
            return plivo_stream(verb);
        } else if verb.is("Reject") || verb.is("Hangup") {
            let busy = verb
                .attr("reason")
                .is_some_and(|r| r.trim().eq_ignore_ascii_case("busy"));
            return Ok(WebhookAnswer::Reject {
                status: if busy { 486 } else { 603 },
            });
        }
        if seen.len() < MAX_SEEN {
            seen.push(clip(&verb.name));
        }
    }
    Err(AnswerError::NoUsableVerb { seen })
}

fn twiml_stream(stream: &Element) -> Result<WebhookAnswer, AnswerError> {
    let url = check_ws_url(stream.attr("url").unwrap_or_default())?;
    let mut parameters = Vec::new();
    for p in stream.children.iter().filter(|c| c.is("Parameter")) {
        let name = p
            .attr("name")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| AnswerError::BadField {
                field: "Parameter.name",
                detail: "missing or empty".into(),
            })?;
        parameters.push((
            name.to_owned(),
            p.attr("value").unwrap_or_default().to_owned(),
        ));
    }
    Ok(WebhookAnswer::Connect {
        url,
        dialect: Some(Dialect::Twilio),
        sample_rate: Some(8_000),
        encoding: Some(AudioEncoding::Mulaw),
        parameters,
        record: None,
        extra_headers: None,
        callback_events: None,
        callback_url: None,
    })
}

fn plivo_stream(stream: &Element) -> Result<WebhookAnswer, AnswerError> {
    let text = stream.text.trim();
    let url = check_ws_url(if text.is_empty() {
        stream.attr("url").unwrap_or_default()
    } else {
        text
    })?;
    let (encoding, rate) = match stream.attr("contentType") {
        Some(ct) => parse_content_type(ct)?,
        None => (AudioEncoding::L16, 8_000),
    };
    Ok(WebhookAnswer::Connect {
        url,
        dialect: Some(Dialect::Plivo),
        sample_rate: Some(rate),
        encoding: Some(encoding),
        parameters: Vec::new(),
        record: None,
        extra_headers: stream.attr("extraHeaders").map(str::to_owned),
        callback_events: None,
        callback_url: None,
    })
}
