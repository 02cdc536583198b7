//! Header field names (RFC 3261 §7.3, §20): case-insensitive recognition of long and compact
//! forms (RFC 3261 §7.3.3 plus the compact forms registered by later RFCs), canonical spelling
//! for output, and which headers are comma-separated lists.
//! Must not: look at header values.

/// A recognised header name; anything else is `Other` (the written name is kept by the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    ContentLength,
    ContentType,
    MaxForwards,
    Route,
    RecordRoute,
    Require,
    ProxyRequire,
    Supported,
    Unsupported,
    Allow,
    Accept,
    AcceptEncoding,
    AcceptLanguage,
    Expires,
    MinExpires,
    UserAgent,
    Server,
    Authorization,
    WwwAuthenticate,
    ProxyAuthorization,
    ProxyAuthenticate,
    AuthenticationInfo,
    ReferTo,
    ReferredBy,
    Replaces,
    Event,
    AllowEvents,
    SubscriptionState,
    Subject,
    ContentEncoding,
    ContentDisposition,
    ContentLanguage,
    MimeVersion,
    Reason,
    RetryAfter,
    Date,
    Warning,
    Timestamp,
    Organization,
    Priority,
    AlertInfo,
    CallInfo,
    ErrorInfo,
    InReplyTo,
    ReplyTo,
    SessionExpires,
    MinSe,
    RSeq,
    RAck,
    Privacy,
    PAssertedIdentity,
    PPreferredIdentity,
    RemotePartyId,
    Diversion,
    Path,
    ServiceRoute,
    Identity,
    IdentityInfo,
    AcceptContact,
    RejectContact,
    RequestDisposition,
    Other,
}

impl HeaderName {
    /// Recognises a header name as written (any case, long or compact form).
    pub fn from_bytes(name: &[u8]) -> HeaderName {
        classify(name)
    }

    /// Same as [`HeaderName::from_bytes`] for text.
    pub fn parse(name: &str) -> HeaderName {
        HeaderName::from_bytes(name.as_bytes())
    }

    /// Canonical (long-form) spelling, `None` for `Other`.
    pub fn canonical(&self) -> Option<&'static str> {
        use HeaderName::*;
        Some(match self {
            Via => "Via",
            From => "From",
            To => "To",
            CallId => "Call-ID",
            CSeq => "CSeq",
            Contact => "Contact",
            ContentLength => "Content-Length",
            ContentType => "Content-Type",
            MaxForwards => "Max-Forwards",
            Route => "Route",
            RecordRoute => "Record-Route",
            Require => "Require",
            ProxyRequire => "Proxy-Require",
            Supported => "Supported",
            Unsupported => "Unsupported",
            Allow => "Allow",
            Accept => "Accept",
            AcceptEncoding => "Accept-Encoding",
            AcceptLanguage => "Accept-Language",
            Expires => "Expires",
            MinExpires => "Min-Expires",
            UserAgent => "User-Agent",
            Server => "Server",
            Authorization => "Authorization",
            WwwAuthenticate => "WWW-Authenticate",
            ProxyAuthorization => "Proxy-Authorization",
            ProxyAuthenticate => "Proxy-Authenticate",
            AuthenticationInfo => "Authentication-Info",
            ReferTo => "Refer-To",
            ReferredBy => "Referred-By",
            Replaces => "Replaces",
            Event => "Event",
            AllowEvents => "Allow-Events",
            SubscriptionState => "Subscription-State",
            Subject => "Subject",
            ContentEncoding => "Content-Encoding",
            ContentDisposition => "Content-Disposition",
            ContentLanguage => "Content-Language",
            MimeVersion => "MIME-Version",
            Reason => "Reason",
            RetryAfter => "Retry-After",
            Date => "Date",
            Warning => "Warning",
            Timestamp => "Timestamp",
            Organization => "Organization",
            Priority => "Priority",
            AlertInfo => "Alert-Info",
            CallInfo => "Call-Info",
            ErrorInfo => "Error-Info",
            InReplyTo => "In-Reply-To",
            ReplyTo => "Reply-To",
            SessionExpires => "Session-Expires",
            MinSe => "Min-SE",
            RSeq => "RSeq",
            RAck => "RAck",
            Privacy => "Privacy",
            PAssertedIdentity => "P-Asserted-Identity",
            PPreferredIdentity => "P-Preferred-Identity",
            RemotePartyId => "Remote-Party-ID",
            Diversion => "Diversion",
            Path => "Path",
            ServiceRoute => "Service-Route",
            Identity => "Identity",
            IdentityInfo => "Identity-Info",
            AcceptContact => "Accept-Contact",
            RejectContact => "Reject-Contact",
            RequestDisposition => "Request-Disposition",
            Other => return None,
        })
    }

    /// The compact form (RFC 3261 §7.3.3, RFC 3515, 3892, 3265, 4028, 3841, 4474), if any.
    pub fn compact(&self) -> Option<char> {
        use HeaderName::*;
        Some(match self {
            AcceptContact => 'a',
            ReferredBy => 'b',
            ContentType => 'c',
            RequestDisposition => 'd',
            ContentEncoding => 'e',
            From => 'f',
            CallId => 'i',
            RejectContact => 'j',
            Supported => 'k',
            ContentLength => 'l',
            Contact => 'm',
            IdentityInfo => 'n',
            Event => 'o',
            ReferTo => 'r',
            Subject => 's',
            To => 't',
            AllowEvents => 'u',
            Via => 'v',
            SessionExpires => 'x',
            Identity => 'y',
            _ => return None,
        })
    }

    /// Whether the header's grammar is a comma-separated list (`#element`), so several values
    /// may share one line. Headers whose values contain commas of their own (Date, the
    /// authentication headers, free text) are not lists.
    pub fn is_list(&self) -> bool {
        use HeaderName::*;
        !matches!(
            self,
            From | To
                | CallId
                | CSeq
                | ContentLength
                | ContentType
                | MaxForwards
                | Expires
                | MinExpires
                | UserAgent
                | Server
                | Authorization
                | WwwAuthenticate
                | ProxyAuthorization
                | ProxyAuthenticate
                | AuthenticationInfo
                | ReferTo
                | ReferredBy
                | Replaces
                | Event
                | SubscriptionState
                | Subject
                | RetryAfter
                | Date
                | Timestamp
                | Organization
                | Priority
                | MimeVersion
                | SessionExpires
                | MinSe
                | RSeq
                | RAck
                | Identity
                | IdentityInfo
        )
    }

    /// Headers that RFC 3261 allows at most once; a second occurrence makes the message
    /// malformed (RFC 4475 §3.3.8).
    pub(crate) fn single_valued(&self) -> Option<&'static str> {
        use HeaderName::*;
        match self {
            CallId | CSeq | From | To | MaxForwards | ContentLength | ContentType => {
                self.canonical()
            }
            _ => None,
        }
    }
}

/// Dispatches on (length, first letter) so at most a couple of case-insensitive compares run.
fn classify(name: &[u8]) -> HeaderName {
    use HeaderName::*;
    let eq = |lower: &[u8]| name.eq_ignore_ascii_case(lower);
    let first = name.first().map_or(0, u8::to_ascii_lowercase);
    match (name.len(), first) {
        (1, b'a') => AcceptContact,
        (1, b'b') => ReferredBy,
        (1, b'c') => ContentType,
        (1, b'd') => RequestDisposition,
        (1, b'e') => ContentEncoding,
        (1, b'f') => From,
        (1, b'i') => CallId,
        (1, b'j') => RejectContact,
        (1, b'k') => Supported,
        (1, b'l') => ContentLength,
        (1, b'm') => Contact,
        (1, b'n') => IdentityInfo,
        (1, b'o') => Event,
        (1, b'r') => ReferTo,
        (1, b's') => Subject,
        (1, b't') => To,
        (1, b'u') => AllowEvents,
        (1, b'v') => Via,
        (1, b'x') => SessionExpires,
        (1, b'y') => Identity,
        (2, b't') if eq(b"to") => To,
        (3, b'v') if eq(b"via") => Via,
        (4, b'c') if eq(b"cseq") => CSeq,
        (4, b'd') if eq(b"date") => Date,
        (4, b'f') if eq(b"from") => From,
        (4, b'p') if eq(b"path") => Path,
        (4, b'r') if eq(b"rseq") => RSeq,
        (4, b'r') if eq(b"rack") => RAck,
        (5, b'a') if eq(b"allow") => Allow,
        (5, b'e') if eq(b"event") => Event,
        (5, b'r') if eq(b"route") => Route,
        (6, b'a') if eq(b"accept") => Accept,
        (6, b'm') if eq(b"min-se") => MinSe,
        (6, b'r') if eq(b"reason") => Reason,
        (6, b's') if eq(b"server") => Server,
        (7, b'c') if eq(b"call-id") => CallId,
        (7, b'c') if eq(b"contact") => Contact,
        (7, b'e') if eq(b"expires") => Expires,
        (7, b'p') if eq(b"privacy") => Privacy,
        (7, b'r') if eq(b"require") => Require,
        (7, b's') if eq(b"subject") => Subject,
        (7, b'w') if eq(b"warning") => Warning,
        (8, b'i') if eq(b"identity") => Identity,
        (8, b'p') if eq(b"priority") => Priority,
        (8, b'r') if eq(b"refer-to") => ReferTo,
        (8, b'r') if eq(b"replaces") => Replaces,
        (8, b'r') if eq(b"reply-to") => ReplyTo,
        (9, b'c') if eq(b"call-info") => CallInfo,
        (9, b'd') if eq(b"diversion") => Diversion,
        (9, b's') if eq(b"supported") => Supported,
        (9, b't') if eq(b"timestamp") => Timestamp,
        (10, b'a') if eq(b"alert-info") => AlertInfo,
        (10, b'e') if eq(b"error-info") => ErrorInfo,
        (10, b'u') if eq(b"user-agent") => UserAgent,
        (11, b'i') if eq(b"in-reply-to") => InReplyTo,
        (11, b'm') if eq(b"min-expires") => MinExpires,
        (11, b'r') if eq(b"referred-by") => ReferredBy,
        (11, b'r') if eq(b"retry-after") => RetryAfter,
        (11, b'u') if eq(b"unsupported") => Unsupported,
        (12, b'a') if eq(b"allow-events") => AllowEvents,
        (12, b'c') if eq(b"content-type") => ContentType,
        (12, b'm') if eq(b"max-forwards") => MaxForwards,
        (12, b'm') if eq(b"mime-version") => MimeVersion,
        (12, b'o') if eq(b"organization") => Organization,
        (12, b'r') if eq(b"record-route") => RecordRoute,
        (13, b'a') if eq(b"authorization") => Authorization,
        (13, b'i') if eq(b"identity-info") => IdentityInfo,
        (13, b'p') if eq(b"proxy-require") => ProxyRequire,
        (13, b's') if eq(b"service-route") => ServiceRoute,
        (14, b'a') if eq(b"accept-contact") => AcceptContact,
        (14, b'c') if eq(b"content-length") => ContentLength,
        (14, b'r') if eq(b"reject-contact") => RejectContact,
        (15, b'a') if eq(b"accept-encoding") => AcceptEncoding,
        (15, b'a') if eq(b"accept-language") => AcceptLanguage,
        (15, b'r') if eq(b"remote-party-id") => RemotePartyId,
        (15, b's') if eq(b"session-expires") => SessionExpires,
        (16, b'c') if eq(b"content-encoding") => ContentEncoding,
        (16, b'c') if eq(b"content-language") => ContentLanguage,
        (16, b'w') if eq(b"www-authenticate") => WwwAuthenticate,
        (18, b'p') if eq(b"proxy-authenticate") => ProxyAuthenticate,
        (18, b's') if eq(b"subscription-state") => SubscriptionState,
        (19, b'a') if eq(b"authentication-info") => AuthenticationInfo,
        (19, b'c') if eq(b"content-disposition") => ContentDisposition,
        (19, b'p') if eq(b"proxy-authorization") => ProxyAuthorization,
        (19, b'p') if eq(b"p-asserted-identity") => PAssertedIdentity,
        (19, b'r') if eq(b"request-disposition") => RequestDisposition,
        (20, b'p') if eq(b"p-preferred-identity") => PPreferredIdentity,
        _ => Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_long_forms_round_trip() {
        for c in b'a'..=b'z' {
            let h = HeaderName::from_bytes(&[c]);
            if let Some(ch) = h.compact() {
                assert_eq!(ch as u8, c);
                let long = h.canonical().unwrap_or_default();
                assert_eq!(HeaderName::parse(long), h);
                assert_eq!(HeaderName::parse(&long.to_ascii_uppercase()), h);
            } else {
                assert_eq!(h, HeaderName::Other, "{}", c as char);
            }
        }
        assert_eq!(
            HeaderName::parse("WWW-authenticate"),
            HeaderName::WwwAuthenticate
        );
        assert_eq!(HeaderName::parse("X-Workspace-ID"), HeaderName::Other);
        assert_eq!(HeaderName::parse(""), HeaderName::Other);
        assert_eq!(HeaderName::parse(&"x".repeat(100)), HeaderName::Other);
    }
}
