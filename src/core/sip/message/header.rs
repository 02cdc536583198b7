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
        let mut low = [0u8; 24];
        if name.is_empty() || name.len() > low.len() {
            return HeaderName::Other;
        }
        for (d, s) in low.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        classify(low.get(..name.len()).unwrap_or(&[]))
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

fn classify(low: &[u8]) -> HeaderName {
    use HeaderName::*;
    match low {
        b"v" | b"via" => Via,
        b"f" | b"from" => From,
        b"t" | b"to" => To,
        b"i" | b"call-id" => CallId,
        b"cseq" => CSeq,
        b"m" | b"contact" => Contact,
        b"l" | b"content-length" => ContentLength,
        b"c" | b"content-type" => ContentType,
        b"max-forwards" => MaxForwards,
        b"route" => Route,
        b"record-route" => RecordRoute,
        b"require" => Require,
        b"proxy-require" => ProxyRequire,
        b"k" | b"supported" => Supported,
        b"unsupported" => Unsupported,
        b"allow" => Allow,
        b"accept" => Accept,
        b"accept-encoding" => AcceptEncoding,
        b"accept-language" => AcceptLanguage,
        b"expires" => Expires,
        b"min-expires" => MinExpires,
        b"user-agent" => UserAgent,
        b"server" => Server,
        b"authorization" => Authorization,
        b"www-authenticate" => WwwAuthenticate,
        b"proxy-authorization" => ProxyAuthorization,
        b"proxy-authenticate" => ProxyAuthenticate,
        b"authentication-info" => AuthenticationInfo,
        b"r" | b"refer-to" => ReferTo,
        b"b" | b"referred-by" => ReferredBy,
        b"replaces" => Replaces,
        b"o" | b"event" => Event,
        b"u" | b"allow-events" => AllowEvents,
        b"subscription-state" => SubscriptionState,
        b"s" | b"subject" => Subject,
        b"e" | b"content-encoding" => ContentEncoding,
        b"content-disposition" => ContentDisposition,
        b"content-language" => ContentLanguage,
        b"mime-version" => MimeVersion,
        b"reason" => Reason,
        b"retry-after" => RetryAfter,
        b"date" => Date,
        b"warning" => Warning,
        b"timestamp" => Timestamp,
        b"organization" => Organization,
        b"priority" => Priority,
        b"alert-info" => AlertInfo,
        b"call-info" => CallInfo,
        b"error-info" => ErrorInfo,
        b"in-reply-to" => InReplyTo,
        b"reply-to" => ReplyTo,
        b"x" | b"session-expires" => SessionExpires,
        b"min-se" => MinSe,
        b"rseq" => RSeq,
        b"rack" => RAck,
        b"privacy" => Privacy,
        b"p-asserted-identity" => PAssertedIdentity,
        b"p-preferred-identity" => PPreferredIdentity,
        b"remote-party-id" => RemotePartyId,
        b"diversion" => Diversion,
        b"path" => Path,
        b"service-route" => ServiceRoute,
        b"y" | b"identity" => Identity,
        b"n" | b"identity-info" => IdentityInfo,
        b"a" | b"accept-contact" => AcceptContact,
        b"j" | b"reject-contact" => RejectContact,
        b"d" | b"request-disposition" => RequestDisposition,
        _ => Other,
    }
}

/// RFC 3261 §25.1 `token` characters, as a table for the hot scanning loops.
pub(crate) static TOKEN: [bool; 256] = token_table();

const fn token_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
}

#[inline]
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// Whether `s` is a non-empty RFC 3261 token.
#[inline]
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
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

    #[test]
    fn token_chars() {
        assert!(is_token("!interesting-Method0123456789_*+`.%indeed'~"));
        assert!(!is_token("a b"));
        assert!(!is_token(""));
        assert!(!is_token("SIP/2.0"));
    }
}
