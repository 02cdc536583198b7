//! What a REGISTER's Contact headers ask for (RFC 3261 §10.3 steps 6 and 8): a query, `*`
//! with `Expires: 0`, or a list of contact URIs, each with its expiry (its `expires`
//! parameter, else the `Expires` header, else the default; 0 removes, below the minimum is
//! 423, above the maximum is capped).
//! Must not: touch the bindings.

use super::Why;
use crate::core::sip::message::{parse_name_addr, HeaderName, Message, Scheme};

/// Longest contact URI we store.
pub(super) const MAX_CONTACT_URI: usize = 512;
/// Contacts looked at in one request (beyond: 403, however many the user may hold).
pub(super) const MAX_CONTACTS_IN_REQUEST: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Wanted {
    Query,
    RemoveAll,
    List(Vec<Want>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Want {
    /// The URI as given, without `<>` or header parameters.
    pub uri: String,
    /// Granted seconds; 0 removes.
    pub expires: u32,
}

pub(super) fn parse(req: &Message, min: u32, max: u32, default: u32) -> Result<Wanted, Why> {
    let header = match req.header(&HeaderName::Expires) {
        Some(v) => Some(delta_seconds(v).ok_or(Why::BadRequest("malformed Expires"))?),
        None => None,
    };
    let values: Vec<&str> = req
        .header_values(&HeaderName::Contact)
        .take(MAX_CONTACTS_IN_REQUEST + 1)
        .collect();
    if values.is_empty() {
        return Ok(Wanted::Query);
    }
    if values.len() > MAX_CONTACTS_IN_REQUEST {
        return Err(Why::TooManyContacts);
    }
    if values.contains(&"*") {
        return if values.len() == 1 && header == Some(0) {
            Ok(Wanted::RemoveAll)
        } else {
            Err(Why::BadRequest(
                "Contact: * needs Expires: 0 and no other Contact",
            ))
        };
    }
    let mut list = Vec::with_capacity(values.len());
    for v in values {
        let na = parse_name_addr(v).map_err(|_| Why::BadRequest("unparseable Contact"))?;
        if !matches!(na.uri.scheme, Scheme::Sip | Scheme::Sips) {
            return Err(Why::BadRequest("Contact is not a sip or sips URI"));
        }
        if na.uri.raw.len() > MAX_CONTACT_URI {
            return Err(Why::BadRequest("Contact URI too long"));
        }
        let asked = match na.params.get("expires") {
            Some(Some(e)) => {
                delta_seconds(e).ok_or(Why::BadRequest("malformed Contact expires"))?
            }
            Some(None) => return Err(Why::BadRequest("Contact expires without a value")),
            None => header.unwrap_or(default),
        };
        let expires = match asked {
            0 => 0,
            n if n < min => return Err(Why::IntervalTooBrief),
            n => n.min(max),
        };
        list.push(Want {
            uri: na.uri.raw.to_owned(),
            expires,
        });
    }
    Ok(Wanted::List(list))
}

/// `1*DIGIT`, quotes tolerated; saturates at `u32::MAX` (capped later).
fn delta_seconds(v: &str) -> Option<u32> {
    let v = v.trim();
    let v = v
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v);
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n: u32 = 0;
    for b in v.bytes() {
        n = n.saturating_mul(10).saturating_add(u32::from(b - b'0'));
    }
    Some(n)
}
