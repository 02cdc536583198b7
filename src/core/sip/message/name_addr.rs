//! From/To/Contact-style values (RFC 3261 §20.10, §20.20, §20.39, §25.1 name-addr / addr-spec).
//! Liberal where RFC 4475 allows it: no LWS needed before `<` (§3.1.1.6), unquoted display
//! names with non-token characters (§3.1.2.15), LWS inside `<...>` (§3.1.2.14), and an
//! unterminated display-name quote is closed before the `<` that follows it (§3.1.2.6).
//! Must not: allocate unless the display name has `\` escapes.

use std::borrow::Cow;

use super::class::find;
use super::params::{quoted_len, trim_lws, Params};
use super::uri::{parse_uri, Uri, UriError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Unquoted, `\`-escapes resolved; `None` when absent or empty.
    pub display: Option<Cow<'a, str>>,
    pub uri: Uri<'a>,
    /// Header parameters after the address (`;tag=...`).
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    pub fn tag(&self) -> Option<&'a str> {
        self.params.get("tag").flatten()
    }
}

/// Parses `[display] <uri> *(;param)` or `uri *(;param)`. In the addr-spec form the URI
/// ends at the first `;`, whose parameters belong to the header (RFC 3261 §20.10).
pub fn parse_name_addr(s: &str) -> Result<NameAddr<'_>, UriError> {
    let s = trim_lws(s);
    if s.is_empty() {
        return Err(UriError::Empty);
    }
    let (display, from_lt) = if s.starts_with('"') {
        quoted_display(s)?
    } else {
        match find(s, b'<') {
            Some(lt) => {
                let d = trim_lws(s.get(..lt).unwrap_or(""));
                let d = (!d.is_empty()).then_some(Cow::Borrowed(d));
                (d, s.get(lt..).unwrap_or(""))
            }
            None => return addr_spec(s),
        }
    };
    let inner_and_rest = from_lt.strip_prefix('<').ok_or(UriError::TrailingGarbage)?;
    let gt = find(inner_and_rest, b'>').ok_or(UriError::MissingRAquot)?;
    let uri = parse_uri(trim_lws(inner_and_rest.get(..gt).unwrap_or("")))?;
    let rest = trim_lws(inner_and_rest.get(gt + 1..).unwrap_or(""));
    if !rest.is_empty() && !rest.starts_with(';') {
        return Err(UriError::TrailingGarbage);
    }
    Ok(NameAddr {
        display,
        uri,
        params: Params::new(rest),
    })
}

fn addr_spec(s: &str) -> Result<NameAddr<'_>, UriError> {
    let (uri, params) = match find(s, b';') {
        Some(i) => (s.get(..i).unwrap_or(""), s.get(i..).unwrap_or("")),
        None => (s, ""),
    };
    Ok(NameAddr {
        display: None,
        uri: parse_uri(trim_lws(uri))?,
        params: Params::new(params),
    })
}

/// Returns the display name and the text from the `<` on.
fn quoted_display(s: &str) -> Result<(Option<Cow<'_, str>>, &str), UriError> {
    let (inner, rest) = match quoted_len(s.as_bytes()) {
        Some(n) => (
            s.get(1..n - 1).ok_or(UriError::UnterminatedQuote)?,
            trim_lws(s.get(n..).unwrap_or("")),
        ),
        None => {
            // Infer the missing closing quote just before the last '<' that has a '>' after it.
            let lt = s.rfind('<').ok_or(UriError::UnterminatedQuote)?;
            if lt == 0 || !s.get(lt..).unwrap_or("").contains('>') {
                return Err(UriError::UnterminatedQuote);
            }
            (
                trim_lws(s.get(1..lt).unwrap_or("")),
                s.get(lt..).unwrap_or(""),
            )
        }
    };
    let display = unquote(inner);
    let display = (!display.is_empty()).then_some(display);
    Ok((display, rest))
}

/// Resolves quoted-pair escapes (RFC 3261 §25.1) inside a quoted string's content.
pub fn unquote(inner: &str) -> Cow<'_, str> {
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::sip::message::uri::Scheme;

    fn na(s: &str) -> NameAddr<'_> {
        parse_name_addr(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn quoted_display_with_escapes() {
        let n = na(r#""A \"B\" C" <sip:alice@example.com>;tag=xyz"#);
        assert_eq!(n.display.as_deref(), Some(r#"A "B" C"#));
        assert_eq!(n.uri.user, Some("alice"));
        assert_eq!(n.tag(), Some("xyz"));
        let n = na(r#""J Rosenberg \\\""       <sip:jdrosen@example.com>"#);
        assert_eq!(n.display.as_deref(), Some(r#"J Rosenberg \""#));
        assert!(matches!(
            na(r#""plain" <sip:a@b>"#).display,
            Some(Cow::Borrowed("plain"))
        ));
    }

    #[test]
    fn addr_spec_params_belong_to_header() {
        let n = na("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n");
        assert_eq!(n.display, None);
        assert_eq!(n.uri.host, "chair-dnrc.example.com");
        assert!(n.uri.params.is_empty());
        assert_eq!(n.tag(), Some("1918181833n"));
        let n = na("tel:+123;phone-context=x");
        assert_eq!(n.uri.scheme, Scheme::Tel);
        assert_eq!(n.params.get("phone-context"), Some(Some("x")));
    }

    #[test]
    fn liberal_forms() {
        assert_eq!(
            na("caller<sip:caller@example.com>;tag=323")
                .display
                .as_deref(),
            Some("caller")
        );
        assert_eq!(
            na("Bell, Alexander <sip:a.g.bell@example.com>;tag=43")
                .display
                .as_deref(),
            Some("Bell, Alexander")
        );
        assert_eq!(
            na("\"W\" < sip:t.watson@example.org >").uri.host,
            "example.org"
        );
        let n = na("\"Mr. J. User <sip:j.user@example.com>");
        assert_eq!(n.display.as_deref(), Some("Mr. J. User"));
        assert_eq!(n.uri.user, Some("j.user"));
        assert_eq!(na("<sip:a@b>").display, None);
        assert_eq!(na("\"\" <sip:a@b>").display, None);
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "\"open",
            "\"x\" sip:a@b",
            "<sip:a@b",
            "<sip:a@b> junk",
            "<>",
            "alan@x",
        ] {
            assert!(parse_name_addr(bad).is_err(), "{bad}");
        }
    }
}
