//! SDES-SRTP offer/answer (RFC 4568 §7): the three modes against plain, best-effort
//! (RTP/AVP with keys) and RTP/SAVP offers, our offers in each mode, and reading answers.

use crate::core::sip::sdp::crypto::{Crypto, Suite};
use crate::core::sip::sdp::{
    accept_answer, answer, offer, parse, AnswerParams, Codec, NegotiationError, SrtpParams, SrtpUse,
};

const KEY80: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

fn params(mode: SrtpUse) -> AnswerParams {
    AnswerParams {
        srtp: SrtpParams {
            mode,
            key_material: [0x42; 32],
        },
        ..super::negotiate_cases::params(&[Codec::Pcmu, Codec::Pcma])
    }
}

fn sdp(proto: &str, crypto: &[String]) -> String {
    let mut s = format!(
        "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 7000 {proto} 0\n"
    );
    for c in crypto {
        s.push_str(&format!("a=crypto:{c}\n"));
    }
    s
}

fn key_line(tag: u32, suite: &str) -> String {
    format!("{tag} {suite} inline:{KEY80}")
}

#[test]
fn each_mode_against_each_kind_of_offer() {
    let plain = sdp("RTP/AVP", &[]);
    let keyed_avp = sdp("RTP/AVP", &[key_line(1, "AES_CM_128_HMAC_SHA1_80")]);
    let savp = sdp(
        "RTP/SAVP",
        &[
            key_line(1, "AES_CM_128_HMAC_SHA1_32"),
            key_line(2, "AES_CM_128_HMAC_SHA1_80"),
        ],
    );
    let savp_unusable = sdp("RTP/SAVP", &["1 F8_128_HMAC_SHA1_80 inline:AAAA".into()]);
    let run = |text: &str, mode| answer(&parse(text).expect("parses"), &params(mode));

    // off: plain RTP only; keys offered on RTP/AVP are ignored, RTP/SAVP is declined.
    let (n, a) = run(&plain, SrtpUse::Off).expect("plain");
    assert!(n.srtp.is_none() && a.media[0].crypto.is_empty());
    let (n, a) = run(&keyed_avp, SrtpUse::Off).expect("keys ignored");
    assert!(n.srtp.is_none() && a.media[0].crypto.is_empty());
    assert_eq!(run(&savp, SrtpUse::Off), Err(NegotiationError::SrtpOnly));

    // optional: keys taken wherever offered, plain accepted.
    let (n, a) = run(&plain, SrtpUse::Optional).expect("plain");
    assert!(n.srtp.is_none() && a.media[0].crypto.is_empty());
    let (n, a) = run(&keyed_avp, SrtpUse::Optional).expect("best effort");
    let keys = n.srtp.expect("encrypted");
    assert_eq!(a.media[0].proto, "RTP/AVP");
    assert_eq!(a.media[0].crypto, [keys.ours.value()]);
    assert_eq!(keys.theirs.key_salt.len(), 30);
    let (n, a) = run(&savp, SrtpUse::Optional).expect("savp");
    let keys = n.srtp.expect("encrypted");
    assert_eq!(a.media[0].proto, "RTP/SAVP");
    // Our preferred suite among those offered, answered under the offer's tag for it.
    assert_eq!(
        (keys.theirs.tag, keys.theirs.suite),
        (2, Suite::AesCm128HmacSha1_80)
    );
    assert_eq!(
        (keys.ours.tag, keys.ours.suite),
        (2, Suite::AesCm128HmacSha1_80)
    );
    assert_eq!(keys.ours.key_salt, vec![0x42; 30]);
    assert_eq!(
        run(&savp_unusable, SrtpUse::Optional),
        Err(NegotiationError::SrtpOnly)
    );

    // required: only keyed streams (488 for the rest).
    assert_eq!(
        run(&plain, SrtpUse::Required),
        Err(NegotiationError::SrtpRequired)
    );
    assert_eq!(
        run(&savp_unusable, SrtpUse::Required),
        Err(NegotiationError::SrtpRequired)
    );
    assert!(run(&keyed_avp, SrtpUse::Required)
        .expect("keyed")
        .0
        .srtp
        .is_some());
    assert!(run(&savp, SrtpUse::Required)
        .expect("savp")
        .0
        .srtp
        .is_some());
}

#[test]
fn the_answer_carries_our_key_not_theirs_and_survives_a_round_trip() {
    let text = sdp("RTP/SAVP", &[key_line(7, "AES_CM_128_HMAC_SHA1_80")]);
    let (n, a) = answer(&parse(&text).expect("parses"), &params(SrtpUse::Required)).expect("ok");
    let printed = a.to_string();
    assert!(!printed.contains(KEY80), "{printed}");
    assert!(
        printed.contains("a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{printed}"
    );
    assert_eq!(parse(&printed).as_ref(), Ok(&a));
    let keys = n.srtp.expect("keys");
    assert_ne!(keys.ours.key_salt, keys.theirs.key_salt);
}

#[test]
fn our_offers_and_the_answers_to_them() {
    let off = offer(&params(SrtpUse::Off));
    assert_eq!(off.media[0].proto, "RTP/AVP");
    assert!(off.media[0].crypto.is_empty());
    let optional = offer(&params(SrtpUse::Optional));
    assert_eq!(optional.media[0].proto, "RTP/AVP");
    assert_eq!(optional.media[0].crypto.len(), 3, "one key line per suite");
    let required = offer(&params(SrtpUse::Required));
    assert_eq!(required.media[0].proto, "RTP/SAVP");
    let tags: Vec<(u32, Suite)> = required.media[0]
        .crypto
        .iter()
        .map(|v| {
            Crypto::parse(v)
                .map(|c| (c.tag, c.suite))
                .expect("ours parse")
        })
        .collect();
    assert_eq!(
        tags,
        [
            (1, Suite::AesCm128HmacSha1_80),
            (2, Suite::AesCm128HmacSha1_32),
            (3, Suite::AeadAes128Gcm)
        ]
    );

    // The answerer picks our tag 2.
    let answer_for = |proto: &str, crypto: &[String]| {
        parse(&sdp(proto, crypto).replace("192.0.2.1", "198.51.100.9")).expect("answer")
    };
    let picked = answer_for("RTP/SAVP", &[key_line(2, "AES_CM_128_HMAC_SHA1_32")]);
    let n = accept_answer(&required, &picked).expect("accepted");
    let keys = n.srtp.expect("keys");
    assert_eq!(
        (keys.ours.tag, keys.ours.suite),
        (2, Suite::AesCm128HmacSha1_32)
    );
    assert_eq!(keys.theirs.key_salt.len(), 30);
    // A key under a tag we never offered, or none to an RTP/SAVP offer: not acceptable.
    let stray = answer_for("RTP/SAVP", &[key_line(9, "AES_CM_128_HMAC_SHA1_80")]);
    assert!(matches!(
        accept_answer(&required, &stray),
        Err(NegotiationError::BadAnswer(_))
    ));
    let unkeyed = answer_for("RTP/SAVP", &[]);
    assert!(matches!(
        accept_answer(&required, &unkeyed),
        Err(NegotiationError::BadAnswer(_))
    ));
    // To the optional offer (RTP/AVP with keys) a plain answer means plain RTP.
    let plain = answer_for("RTP/AVP", &[]);
    assert_eq!(accept_answer(&optional, &plain).expect("plain").srtp, None);
    let keyed = answer_for("RTP/AVP", &[key_line(1, "AES_CM_128_HMAC_SHA1_80")]);
    assert!(accept_answer(&optional, &keyed)
        .expect("keyed")
        .srtp
        .is_some());
}

#[test]
fn srtp_params_do_not_show_the_key_material() {
    let text = format!("{:?}", params(SrtpUse::Required).srtp);
    assert!(!text.contains("66"), "{text}");
    assert!(text.contains("Required"), "{text}");
}

#[test]
fn without_key_material_no_key_is_taken_or_offered() {
    let keyless = |mode| AnswerParams {
        srtp: SrtpParams {
            mode,
            key_material: [0; 32],
        },
        ..params(mode)
    };
    let savp = sdp("RTP/SAVP", &[key_line(1, "AES_CM_128_HMAC_SHA1_80")]);
    let keyed_avp = sdp("RTP/AVP", &[key_line(1, "AES_CM_128_HMAC_SHA1_80")]);
    let savp = parse(&savp).expect("parses");
    let keyed_avp = parse(&keyed_avp).expect("parses");
    // required: nothing is usable without our own key.
    assert_eq!(
        answer(&savp, &keyless(SrtpUse::Required)).map(|_| ()),
        Err(NegotiationError::SrtpRequired)
    );
    // optional: plain RTP, the offered key ignored.
    let (n, a) = answer(&keyed_avp, &keyless(SrtpUse::Optional)).expect("plain");
    assert!(n.srtp.is_none() && a.media[0].crypto.is_empty());
    // our offers carry no key (a required offer cannot be answered with SRTP).
    for mode in [SrtpUse::Optional, SrtpUse::Required] {
        assert!(offer(&keyless(mode)).media[0].crypto.is_empty());
    }
}
