use super::*;

const JSON: Option<&str> = Some("application/json; charset=utf-8");
const XML: Option<&str> = Some("text/xml");

fn connect(url: &str) -> WebhookAnswer {
    WebhookAnswer::Connect {
        url: url.into(),
        dialect: None,
        sample_rate: None,
        encoding: None,
        parameters: vec![],
        record: None,
        extra_headers: None,
        callback_events: None,
        callback_url: None,
    }
}

fn twiml(url: &str, parameters: &[(&str, &str)]) -> WebhookAnswer {
    WebhookAnswer::Connect {
        url: url.into(),
        dialect: Some(Dialect::Twilio),
        sample_rate: Some(8000),
        encoding: Some(AudioEncoding::Mulaw),
        parameters: parameters
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        record: None,
        extra_headers: None,
        callback_events: None,
        callback_url: None,
    }
}

fn plivo(url: &str, rate: u32, encoding: AudioEncoding, extra: Option<&str>) -> WebhookAnswer {
    WebhookAnswer::Connect {
        url: url.into(),
        dialect: Some(Dialect::Plivo),
        sample_rate: Some(rate),
        encoding: Some(encoding),
        parameters: vec![],
        record: None,
        extra_headers: extra.map(str::to_owned),
        callback_events: None,
        callback_url: None,
    }
}

fn json(body: &str) -> Result<WebhookAnswer, AnswerError> {
    parse_answer(JSON, body.as_bytes())
}

fn xml(body: &str) -> Result<WebhookAnswer, AnswerError> {
    parse_answer(XML, body.as_bytes())
}

#[test]
fn json_connect_with_every_field() {
    let body = r#"{"websocket_url":"wss://agent.example/ws?call=1","dialect":"plivo",
        "sample_rate":16000,"encoding":"mulaw","record":true,"extra_headers":"a=1",
        "parameters":{"lang":"hi","n":2,"vip":true,"gone":null},"unknown_key":[1]}"#;
    let want = WebhookAnswer::Connect {
        url: "wss://agent.example/ws?call=1".into(),
        dialect: Some(Dialect::Plivo),
        sample_rate: Some(16000),
        encoding: Some(AudioEncoding::Mulaw),
        parameters: vec![
            ("lang".into(), "hi".into()),
            ("n".into(), "2".into()),
            ("vip".into(), "true".into()),
        ],
        record: Some(true),
        extra_headers: Some("a=1".into()),
        callback_events: None,
        callback_url: None,
    };
    assert_eq!(json(body), Ok(want));
    assert_eq!(
        json(r#"{"websocket_url":" ws://10.0.0.1:8080 "}"#),
        Ok(connect("ws://10.0.0.1:8080"))
    );
    assert_eq!(
        json(
            r#"{"action":"connect","websocket_url":"WSS://A.example","sample_rate":"8000","dialect":"Twilio"}"#
        ),
        Ok(WebhookAnswer::Connect {
            url: "WSS://A.example".into(),
            dialect: Some(Dialect::Twilio),
            sample_rate: Some(8000),
            encoding: None,
            parameters: vec![],
            record: None,
            extra_headers: None,
            callback_events: None,
            callback_url: None,
        })
    );
}

#[test]
fn json_status_callbacks() {
    let body = r#"{"websocket_url":"wss://a.example/ws",
        "callback_url":"https://platform.example/calls/status?k=1",
        "callback_events":["ringing","call.answered","completed","ringing"]}"#;
    let Ok(WebhookAnswer::Connect {
        callback_events,
        callback_url,
        ..
    }) = json(body)
    else {
        panic!("connect answer expected: {:?}", json(body));
    };
    assert_eq!(callback_events, Some(EventSet::ALL));
    assert_eq!(
        callback_url.as_deref(),
        Some("https://platform.example/calls/status?k=1")
    );
    // An empty list means none; null means "the configured ones".
    let events = |list: &str| match json(&format!(
        r#"{{"websocket_url":"wss://a.example","callback_events":{list}}}"#
    )) {
        Ok(WebhookAnswer::Connect {
            callback_events, ..
        }) => Ok(callback_events),
        Ok(other) => panic!("not a connect: {other:?}"),
        Err(e) => Err(e),
    };
    assert_eq!(events("[]"), Ok(Some(EventSet::NONE)));
    assert_eq!(events("null"), Ok(None));
    assert_eq!(
        events(r#"["answered"]"#),
        Ok(Some(EventSet::NONE.with(CallbackEvent::Answered)))
    );
    for bad in [r#""ringing""#, r#"["ringing",1]"#, r#"["transfer"]"#, "{}"] {
        assert!(
            matches!(
                events(bad),
                Err(AnswerError::BadField {
                    field: "callback_events",
                    ..
                })
            ),
            "{bad}: {:?}",
            events(bad)
        );
    }
    for bad in [
        r#""ftp://x.example""#,
        r#""https://""#,
        r#""http://a b.example""#,
        r#""http://:80/""#,
        "5",
    ] {
        let got = json(&format!(
            r#"{{"websocket_url":"wss://a.example","callback_url":{bad}}}"#
        ));
        assert!(
            matches!(
                got,
                Err(AnswerError::BadField {
                    field: "callback_url",
                    ..
                })
            ),
            "{bad}: {got:?}"
        );
    }
    // XML answers carry neither.
    let twiml = r#"<Response><Connect><Stream url="wss://a.example"/></Connect></Response>"#;
    assert!(matches!(
        xml(twiml),
        Ok(WebhookAnswer::Connect {
            callback_events: None,
            callback_url: None,
            ..
        })
    ));
}

#[test]
fn json_reject() {
    let reject = |s| Ok(WebhookAnswer::Reject { status: s });
    assert_eq!(json(r#"{"action":"reject","status":486}"#), reject(486));
    assert_eq!(json(r#"{"action":"Reject","status":"480"}"#), reject(480));
    assert_eq!(json(r#"{"action":"reject"}"#), reject(603));
    for bad in ["200", "700", "\"busy\"", "-486", "486.5", "[486]"] {
        let body = format!(r#"{{"action":"reject","status":{bad}}}"#);
        assert!(
            matches!(json(&body), Err(AnswerError::BadStatus(_))),
            "{bad}"
        );
    }
}

#[test]
fn json_failures() {
    use AnswerError as E;
    assert!(matches!(json("{"), Err(E::Json(_))));
    assert!(matches!(json(r#"["wss://x"]"#), Err(E::Json(_))));
    assert_eq!(
        json(r#"{"action":"transfer"}"#),
        Err(E::UnknownAction("transfer".into()))
    );
    assert_eq!(json("{}"), Err(E::MissingUrl));
    assert_eq!(json(r#"{"websocket_url":""}"#), Err(E::MissingUrl));
    assert!(matches!(
        json(r#"{"websocket_url":5}"#),
        Err(E::BadField {
            field: "websocket_url",
            ..
        })
    ));
    for url in [
        "https://a.example",
        "wss://",
        "wss:///path",
        "wss://:443",
        "wss://a b",
        "a.example",
        "wss://a\u{7}",
    ] {
        let body = serde_json::json!({ "websocket_url": url }).to_string();
        assert!(matches!(json(&body), Err(E::BadUrl(_))), "{url}");
    }
    let long =
        serde_json::json!({ "websocket_url": format!("wss://a/{}", "x".repeat(MAX_URL_LEN)) });
    assert!(matches!(json(&long.to_string()), Err(E::BadUrl(_))));
    let ok = r#""websocket_url":"wss://a""#;
    assert_eq!(
        json(&format!(r#"{{{ok},"dialect":"exotel"}}"#)),
        Err(E::UnknownDialect("exotel".into()))
    );
    assert!(matches!(
        json(&format!(r#"{{{ok},"sample_rate":44100}}"#)),
        Err(E::BadSampleRate(_))
    ));
    assert!(matches!(
        json(&format!(r#"{{{ok},"sample_rate":true}}"#)),
        Err(E::BadSampleRate(_))
    ));
    assert!(matches!(
        json(&format!(r#"{{{ok},"encoding":"alaw"}}"#)),
        Err(E::BadContentType(_))
    ));
    assert!(matches!(
        json(&format!(r#"{{{ok},"record":"yes"}}"#)),
        Err(E::BadField {
            field: "record",
            ..
        })
    ));
    assert!(matches!(
        json(&format!(r#"{{{ok},"parameters":{{"a":{{"b":1}}}}}}"#)),
        Err(E::BadField {
            field: "parameters",
            ..
        })
    ));
    assert!(matches!(
        json(&format!(r#"{{{ok},"parameters":[1]}}"#)),
        Err(E::BadField {
            field: "parameters",
            ..
        })
    ));
}

#[test]
fn twiml_connect_stream() {
    let body = r#"<?xml version="1.0" encoding="UTF-8"?>
        <!-- generated by the platform -->
        <Response>
          <Say>Hello</Say>
          <Connect action="https://ignored.example">
            <Stream name='agent' url='wss://agent.example/s?a=1&amp;b=2' >
              <!-- a comment -->
              <Parameter name="k" value="v &lt;1&gt;" />
              <Parameter value="&#x2B;91" name='caller'/>
              <Parameter name="empty"/>
            </Stream>
          </Connect>
          <Hangup/>
        </Response>"#;
    let want = twiml(
        "wss://agent.example/s?a=1&b=2",
        &[("k", "v <1>"), ("caller", "+91"), ("empty", "")],
    );
    assert_eq!(xml(body), Ok(want.clone()));
    // Sniffed without a content type, and behind a byte-order mark.
    assert_eq!(parse_answer(None, body.as_bytes()), Ok(want.clone()));
    assert_eq!(
        parse_answer(Some("text/html"), format!("\u{feff}{body}").as_bytes()),
        Ok(want)
    );
}

#[test]
fn twiml_reject_and_hangup() {
    let reject = |s| Ok(WebhookAnswer::Reject { status: s });
    assert_eq!(
        xml(r#"<Response><Reject reason="busy"/></Response>"#),
        reject(486)
    );
    assert_eq!(
        xml(r#"<Response><Reject reason="rejected"></Reject></Response>"#),
        reject(603)
    );
    assert_eq!(xml("<Response><Reject/></Response>"), reject(603));
    assert_eq!(
        xml("<Response><Pause length='1'/><Hangup/></Response>"),
        reject(603)
    );
    assert_eq!(
        xml(r#"<Response><Hangup reason="busy"/></Response>"#),
        reject(486)
    );
}

#[test]
fn plivo_stream() {
    let body = r#"<Response>
        <Stream bidirectional="true" keepCallAlive="true" contentType="audio/x-l16;rate=16000"
                extraHeaders="a=1,b=2">
            wss://agent.example/plivo?x=1&amp;y=2
        </Stream>
    </Response>"#;
    assert_eq!(
        xml(body),
        Ok(plivo(
            "wss://agent.example/plivo?x=1&y=2",
            16000,
            AudioEncoding::L16,
            Some("a=1,b=2")
        ))
    );
    let mulaw = r#"<Response><Stream contentType="audio/x-mulaw;rate=8000"><![CDATA[wss://a/&]]></Stream></Response>"#;
    assert_eq!(
        xml(mulaw),
        Ok(plivo("wss://a/&", 8000, AudioEncoding::Mulaw, None))
    );
    let default = "<Response><Stream>ws://a:9000/</Stream></Response>";
    assert_eq!(
        xml(default),
        Ok(plivo("ws://a:9000/", 8000, AudioEncoding::L16, None))
    );
    for ct in [
        "audio/x-mulaw;rate=16000",
        "audio/x-l16;rate=44100",
        "audio/wav",
        "audio/x-l16;rate",
        "audio/x-l16;rate=x",
    ] {
        let body = format!(r#"<Response><Stream contentType="{ct}">wss://a</Stream></Response>"#);
        assert!(
            matches!(xml(&body), Err(AnswerError::BadContentType(_))),
            "{ct}"
        );
    }
}

#[test]
fn xml_failures() {
    use AnswerError as E;
    assert_eq!(xml("<Foo/>"), Err(E::NotResponse("Foo".into())));
    assert_eq!(xml("<Response/>"), Err(E::NoUsableVerb { seen: vec![] }));
    assert_eq!(
        xml("<Response><Start><Stream url='wss://a'/></Start><Connect><Room>r</Room></Connect></Response>"),
        Err(E::NoUsableVerb { seen: vec!["Start".into(), "Connect".into()] })
    );
    assert_eq!(
        xml("<Response><Connect><Stream/></Connect></Response>"),
        Err(E::MissingUrl)
    );
    assert!(matches!(
        xml("<Response><Connect><Stream url='http://a'/></Connect></Response>"),
        Err(E::BadUrl(_))
    ));
    assert!(matches!(
        xml("<Response><Connect><Stream url='wss://a'><Parameter value='1'/></Stream></Connect></Response>"),
        Err(E::BadField { field: "Parameter.name", .. })
    ));
    assert_eq!(
        xml("<Response><Stream>  </Stream></Response>"),
        Err(E::MissingUrl)
    );
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><Response>&b;</Response>"#;
    assert_eq!(xml(bomb), Err(E::DtdNotAllowed));
    for broken in [
        "<Response><Stream>wss://a/&foo;</Stream></Response>",
        "<Response><Connect></Response>",
        "<Response>",
        "<Response/><Response/>",
        "junk<Response/>",
        "<Response a='1' a='2'/>",
        "<Response a=1/>",
        "<Response></Respons>",
        "</Response>",
        "<Response><Stream url='&bogus;'/></Response>",
    ] {
        assert!(matches!(xml(broken), Err(E::Xml { .. })), "{broken}");
    }
    assert_eq!(xml(&"<a>".repeat(20)), Err(E::TooDeep(xml::MAX_DEPTH)));
    assert_eq!(xml(&"<a>".repeat(20_000)), Err(E::TooDeep(xml::MAX_DEPTH)));
    assert_eq!(
        xml("<Response><Stream>wss://x/&#x61;</Stream></Response>")
            .ok()
            .map(|a| match a {
                WebhookAnswer::Connect { url, .. } => url,
                WebhookAnswer::Reject { .. } => String::new(),
            }),
        Some("wss://x/a".into())
    );
}

#[test]
fn body_level_failures() {
    use AnswerError as E;
    let big = vec![b' '; MAX_ANSWER_BYTES + 1];
    assert_eq!(
        parse_answer(JSON, &big),
        Err(E::TooLarge {
            len: MAX_ANSWER_BYTES + 1,
            max: MAX_ANSWER_BYTES
        })
    );
    assert_eq!(parse_answer(JSON, b""), Err(E::Empty));
    assert_eq!(parse_answer(None, b" \r\n\t"), Err(E::Empty));
    assert_eq!(parse_answer(None, b"\xEF\xBB\xBF"), Err(E::Empty));
    assert_eq!(
        parse_answer(None, b"{\"a\":\"\xFF\"}"),
        Err(E::NotUtf8 { valid_up_to: 6 })
    );
    assert_eq!(
        parse_answer(None, b"OK"),
        Err(E::Unrecognised { content_type: None })
    );
    assert_eq!(
        parse_answer(Some("text/plain"), b"OK"),
        Err(E::Unrecognised {
            content_type: Some("text/plain".into())
        })
    );
    // The content type wins over the first byte.
    assert!(matches!(
        parse_answer(JSON, b"<Response/>"),
        Err(E::Json(_))
    ));
    assert!(matches!(
        parse_answer(Some("application/xml"), b"{}"),
        Err(E::Xml { .. })
    ));
    assert_eq!(
        parse_answer(
            Some("application/vnd.trunkgate+json"),
            br#"{"action":"reject"}"#
        ),
        Ok(WebhookAnswer::Reject { status: 603 })
    );
}

/// Mutated valid answers under every content type: errors, never panics.
#[test]
fn parse_survives_garbage() {
    let seeds: [&[u8]; 4] = [
        br#"{"websocket_url":"wss://a/b","dialect":"plivo","sample_rate":16000,"parameters":{"a":"1"}}"#,
        br#"<Response><Connect><Stream url="wss://a/?x=1&amp;y"><Parameter name="k" value="v"/></Stream></Connect></Response>"#,
        br#"<Response><Stream contentType="audio/x-l16;rate=16000" extraHeaders="a=1">wss://a</Stream></Response>"#,
        br#"<Response><!-- c --><Reject reason="busy"/></Response>"#,
    ];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut rnd = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n.max(1) as u64) as usize
    };
    let mut ok = 0;
    for i in 0..20_000 {
        let mut b = seeds[i % seeds.len()].to_vec();
        for _ in 0..1 + rnd(3) {
            let at = rnd(b.len());
            match rnd(3) {
                0 => b[at] = b"<>&;\"'/=!?[]{}:, x\xC3"[rnd(19)],
                1 => b.insert(at, b"<>&#;/"[rnd(6)]),
                _ => {
                    b.remove(at);
                }
            }
        }
        for ct in [None, JSON, XML, Some("text/plain")] {
            ok += usize::from(parse_answer(ct, &b).is_ok());
        }
    }
    assert!(ok > 1_000, "only {ok} mutated answers parsed");
}
