//! Typed views over parsed messages: URIs, name-addrs, params, lists, caller id.

use super::{parse, req, INVITE};
use crate::core::number::did_crt;
use crate::core::sip::message::{parse_uri, unescape, HeaderName, Scheme};

#[test]
fn did_crt_from_a_real_from_header() {
    let m = parse(INVITE);
    let display = m.from_hdr().display.unwrap_or_default();
    let c = did_crt(&display);
    assert_eq!(c.did.as_deref(), Some("+919990152080"));
    assert_eq!(c.crt.as_deref(), Some("d444-69139d35-vce-daf-3883"));
    let m = parse(&req(""));
    assert_eq!(m.from_hdr().display, None);
}

#[test]
fn tel_uris_in_headers() {
    let m = parse(&req("").replace(
        "To: <sip:bob@example.com>",
        "To: <tel:+1-201-555-0123;phone-context=example.com>;tag=t",
    ));
    let to = m.to_hdr();
    assert_eq!(to.uri.scheme, Scheme::Tel);
    assert_eq!(to.uri.user, Some("+1-201-555-0123"));
    assert_eq!(
        to.uri.params.get("PHONE-CONTEXT"),
        Some(Some("example.com"))
    );
    assert_eq!(to.tag(), Some("t"));
    let u = parse_uri("tel:911").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((u.user, u.host, u.port), (Some("911"), "", None));
}

#[test]
fn uri_and_header_params() {
    let m = parse(&req("Contact: <sip:a@h;transport=tcp;lr>;expires=60;q=0.5;+sip.instance=\"<urn:x>\", <sip:b@h>\r\n"));
    let contacts: Vec<_> = m.header_values(&HeaderName::Contact).collect();
    assert_eq!(contacts.len(), 2);
    let c = m.contact().unwrap_or_else(|| panic!("contact"));
    assert_eq!(c.uri.params.get("lr"), Some(None));
    assert_eq!(c.uri.params.get("expires"), None);
    assert_eq!(c.params.get("EXPIRES"), Some(Some("60")));
    assert_eq!(c.params.get("+sip.instance"), Some(Some("\"<urn:x>\"")));
    let names: Vec<_> = c.params.iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["expires", "q", "+sip.instance"]);
    let star = parse(&req("Contact: *\r\n"));
    assert!(star.contact().is_none());
}

#[test]
fn non_list_headers_are_not_split() {
    let m = parse(&req("Date: Sat, 13 Nov 2010 23:29:00 GMT\r\nWWW-Authenticate: Digest realm=\"a\", nonce=\"b\"\r\n"));
    assert_eq!(m.header_values(&HeaderName::Date).count(), 1);
    assert_eq!(m.header_values(&HeaderName::WwwAuthenticate).count(), 1);
    assert_eq!(m.header_values(&HeaderName::Subject).count(), 0);
}

#[test]
fn escapes_stay_in_spans() {
    let m = parse(&req("").replace("sip:bob@example.com SIP", "sip:b%6Fb@example.com SIP"));
    let uri = parse_uri(m.request_uri().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(uri.user, Some("b%6Fb"));
    assert_eq!(unescape(uri.user.unwrap_or_default()), "bob");
}
