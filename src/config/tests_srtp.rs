//! `srtp` globally, per trunk, per number and toward trunks, and the refusal of SDES keys
//! over plain SIP unless `rtp.srtp_allow_plain_sip`.

use super::tests::{errors, ok};
use super::SrtpMode;

const TLS_ONLY: &str = concat!(
    "[sip]\nlisten_udp = []\nlisten_tcp = []\nlisten_tls = [\"127.0.0.1:5061\"]\n",
    "[sip.tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n",
);

#[test]
fn modes_per_trunk_and_number_inherit_when_absent() {
    let c = ok(concat!(
        "[rtp]\nsrtp = \"off\"\n",
        "[[trunk]]\nname = \"a\"\nsrtp = \"optional\"\n",
        "[[trunk]]\nname = \"b\"\n",
        "[[number]]\ndid = \"+48123456789\"\nagent = { url = \"builtin:echo\" }\nsrtp = \"off\"\n",
        "[[number]]\ndid = \"*\"\nagent = { url = \"builtin:echo\" }\n",
    ));
    assert_eq!(c.rtp.srtp, SrtpMode::Off);
    assert!(!c.rtp.srtp_allow_plain_sip);
    assert_eq!(c.trunks[0].srtp, Some(SrtpMode::Optional));
    assert_eq!(c.trunks[1].srtp, None);
    assert_eq!(c.numbers[0].srtp, Some(SrtpMode::Off));
    assert_eq!(c.numbers[1].srtp, None);
}

#[test]
fn required_over_plain_listeners_is_refused_unless_allowed() {
    assert_eq!(
        errors("[rtp]\nsrtp = \"required\"\n"),
        "t.toml:2: rtp.srtp: \"required\" while sip.listen_udp takes SIP in clear would send \
         the SRTP keys in clear; listen on TLS only, or set rtp.srtp_allow_plain_sip = true"
    );
    assert_eq!(
        errors(concat!(
            "[sip]\nlisten_udp = []\nlisten_tcp = [\"127.0.0.1:5060\"]\n",
            "[[trunk]]\nname = \"a\"\nsrtp = \"required\"\n",
            "[[number]]\ndid = \"*\"\nagent = { url = \"builtin:echo\" }\nsrtp = \"required\"\n",
        )),
        concat!(
            "t.toml:6: trunk[0].srtp: \"required\" while sip.listen_tcp takes SIP in clear would \
             send the SRTP keys in clear; listen on TLS only, or set rtp.srtp_allow_plain_sip = true\n",
            "t.toml:10: number[0].srtp: \"required\" while sip.listen_tcp takes SIP in clear would \
             send the SRTP keys in clear; listen on TLS only, or set rtp.srtp_allow_plain_sip = true"
        )
    );
    let c = ok("[rtp]\nsrtp = \"required\"\nsrtp_allow_plain_sip = true\n");
    assert_eq!(c.rtp.srtp, SrtpMode::Required);
    assert!(c.rtp.srtp_allow_plain_sip);
    let c = ok(&format!("{TLS_ONLY}[rtp]\nsrtp = \"required\"\n"));
    assert_eq!(c.rtp.srtp, SrtpMode::Required);
    // "optional" over plain listeners is valid: such calls run plain.
    assert_eq!(
        ok("[rtp]\nsrtp = \"optional\"\n").rtp.srtp,
        SrtpMode::Optional
    );
}

#[test]
fn srtp_toward_a_trunk_needs_tls_unless_allowed() {
    assert_eq!(
        errors(
            "[[trunk]]\nname = \"d\"\noutbound = { address = \"h:5060\", srtp = \"optional\" }\n"
        ),
        "t.toml:3: trunk[0].outbound.srtp: SRTP over transport \"udp\" would send its keys in \
         clear; use transport = \"tls\", or set rtp.srtp_allow_plain_sip = true"
    );
    let c = ok(
        "[[trunk]]\nname = \"d\"\noutbound = { address = \"h:5061\", transport = \"tls\", srtp = \"required\" }\n",
    );
    let out = c.trunks[0].outbound.as_ref().expect("outbound");
    assert_eq!(out.srtp, SrtpMode::Required);
    let c = ok(concat!(
        "[rtp]\nsrtp_allow_plain_sip = true\n",
        "[[trunk]]\nname = \"d\"\noutbound = { address = \"h:5060\", transport = \"tcp\", srtp = \"optional\" }\n",
    ));
    let out = c.trunks[0].outbound.as_ref().expect("outbound");
    assert_eq!(out.srtp, SrtpMode::Optional);
}
