//! SDES-SRTP on the caller leg: an RTP/SAVP offer with a key is answered with ours, the
//! caller's protected audio reaches the agent, what we send decrypts with our key, and plain
//! or forged packets are refused and counted; with SRTP off the same offer gets no answer.

use super::harness::*;
use crate::core::call::Route;
use crate::core::media::rtp;
use crate::core::media::srtp::SrtpSession;
use crate::core::sip::endpoint::{CallEvent, EndReason as SipEnd};
use crate::core::sip::sdp::crypto::{Crypto, Suite};
use crate::core::sip::sdp::{SrtpParams, SrtpUse};

fn caller_key() -> Crypto {
    Crypto {
        tag: 1,
        suite: Suite::AesCm128HmacSha1_80,
        key_salt: vec![7; 30],
    }
}

fn savp_offer() -> Vec<u8> {
    savp_offer_with(&caller_key())
}

fn savp_offer_with(key: &Crypto) -> Vec<u8> {
    OFFER
        .replace("RTP/AVP", "RTP/SAVP")
        .replace(
            "a=ptime:20\r\n",
            &format!("a=ptime:20\r\na=crypto:{}\r\n", key.value()),
        )
        .into_bytes()
}

#[test]
fn an_srtp_caller_is_answered_with_our_key_and_heard_both_ways() {
    let mut settings = settings();
    settings.answer.srtp = SrtpParams {
        mode: SrtpUse::Required,
        key_material: [9; 32],
    };
    let mut s = setup(Route::Static(raw_agent()));
    s.offer = Some(savp_offer());
    let mut h = H::new(s, settings);
    h.agent_up();
    h.lease(Some(PORT));
    let answer = answer_sdp(&h.take());
    h.sip(CallEvent::Acked { sdp: None });
    assert_eq!(answer.media[0].proto, "RTP/SAVP");
    let ours = Crypto::parse(&answer.media[0].crypto[0]).expect("our key");
    assert_eq!((ours.tag, ours.suite), (1, Suite::AesCm128HmacSha1_80));
    assert_eq!(ours.key_salt, vec![9; 30]);
    let mut caller = SrtpSession::new(&caller_key(), &ours).expect("caller's session");

    // Caller → agent: protected audio is decrypted; a plain and a forged packet are not.
    let pcm = tone(160);
    for seq in 1..=5u16 {
        let plain = audio_packet(0, seq, u32::from(seq) * 160, &pcm);
        let wire = caller.protect_rtp(&plain).expect("protect");
        h.caller_datagram(&wire);
    }
    h.caller_datagram(&audio_packet(0, 6, 960, &pcm));
    let mut forged = caller
        .protect_rtp(&audio_packet(0, 7, 1120, &pcm))
        .expect("protect")
        .to_vec();
    forged[30] ^= 0x40;
    h.caller_datagram(&forged);
    assert_eq!(agent_binaries(&h.take()).len(), 5);

    // Gateway → caller: every packet we send decrypts with our key.
    h.advance_to(ms(200));
    let sent = packets(&h.take());
    assert!(sent.len() >= 10, "{}", sent.len());
    for p in &sent {
        let mut wire = Vec::new();
        rtp::write(&p.header, &p.payload, &mut wire);
        assert_eq!(p.payload.len(), 160 + 10, "payload and the 80-bit tag");
        let plain = caller.unprotect_rtp(&wire).expect("decrypts with our key");
        assert_eq!(plain.len(), 12 + 160);
    }
    // A refresh re-INVITE with the same keys keeps the session: a replay of a packet heard
    // before it is still refused, and the stream goes on.
    h.sip(CallEvent::ReInvite {
        sdp: Some(savp_offer()),
    });
    let replay = caller
        .protect_rtp(&audio_packet(0, 5, 800, &pcm))
        .expect("protect");
    h.caller_datagram(&replay);
    let next = caller
        .protect_rtp(&audio_packet(0, 8, 1280, &pcm))
        .expect("protect");
    h.caller_datagram(&next);
    assert_eq!(
        agent_binaries(&h.take()).len(),
        1,
        "the replay refused, the next heard"
    );
    let e = h.dialog_ends(SipEnd::RemoteBye);
    assert_eq!(e.rtp_in, 6, "refused packets are not media");
}

/// The statuses the call was refused with (the offer is checked before anything starts).
fn rejections(h: &mut H) -> Vec<u16> {
    sip_cmds(&h.take())
        .into_iter()
        .filter_map(|c| match c {
            crate::core::sip::endpoint::CallCommand::Reject { status, .. } => Some(status),
            _ => None,
        })
        .collect()
}

#[test]
fn srtp_off_declines_a_savp_only_offer_and_required_declines_plain() {
    let mut s = setup(Route::Static(raw_agent()));
    s.offer = Some(savp_offer());
    let mut h = H::new(s, settings());
    assert_eq!(
        rejections(&mut h),
        [488],
        "SRTP off: an RTP/SAVP-only offer"
    );

    let mut settings = settings();
    settings.answer.srtp.mode = SrtpUse::Required;
    let mut h = H::new(setup(Route::Static(raw_agent())), settings);
    assert_eq!(rejections(&mut h), [488], "SRTP required: a plain offer");
}

#[test]
fn a_reinvite_with_a_new_caller_key_rekeys_both_ways() {
    let mut settings = settings();
    settings.answer.srtp = SrtpParams {
        mode: SrtpUse::Required,
        key_material: [9; 32],
    };
    let mut s = setup(Route::Static(raw_agent()));
    s.offer = Some(savp_offer());
    let mut h = H::new(s, settings);
    h.agent_up();
    h.lease(Some(PORT));
    let first = answer_sdp(&h.take());
    h.sip(CallEvent::Acked { sdp: None });
    let first = Crypto::parse(&first.media[0].crypto[0]).expect("our key");
    let pcm = tone(160);

    let new_key = Crypto {
        key_salt: vec![8; 30],
        ..caller_key()
    };
    h.sip(CallEvent::ReInvite {
        sdp: Some(savp_offer_with(&new_key)),
    });
    let answer = sip_cmds(&h.take())
        .into_iter()
        .find_map(|c| match c {
            crate::core::sip::endpoint::CallCommand::ReInviteAnswer { sdp } => Some(sdp),
            _ => None,
        })
        .expect("re-INVITE answered");
    let answer = crate::core::sip::sdp::parse(&String::from_utf8_lossy(&answer)).expect("sdp");
    let ours = Crypto::parse(&answer.media[0].crypto[0]).expect("our new key");
    assert_eq!((ours.tag, ours.suite), (first.tag, first.suite));
    assert_ne!(
        ours.key_salt, first.key_salt,
        "a new key of ours with the new session"
    );

    // The caller's packets under its old key are refused, under the new one heard.
    let mut old = SrtpSession::new(&caller_key(), &first).expect("old session");
    h.caller_datagram(
        &old.protect_rtp(&audio_packet(0, 1, 160, &pcm))
            .expect("protect"),
    );
    let mut caller = SrtpSession::new(&new_key, &ours).expect("new session");
    h.caller_datagram(
        &caller
            .protect_rtp(&audio_packet(0, 2, 320, &pcm))
            .expect("protect"),
    );
    assert_eq!(
        agent_binaries(&h.take()).len(),
        1,
        "only the newly keyed packet"
    );
    // What we send decrypts with our new key only.
    h.advance_to(ms(100));
    let sent = packets(&h.take());
    assert!(!sent.is_empty());
    for p in &sent {
        let mut wire = Vec::new();
        rtp::write(&p.header, &p.payload, &mut wire);
        assert!(
            caller.unprotect_rtp(&wire).is_ok(),
            "decrypts with the new key"
        );
    }
    // A later refresh offering the same new key keeps our new key.
    h.sip(CallEvent::ReInvite {
        sdp: Some(savp_offer_with(&new_key)),
    });
    let again = sip_cmds(&h.take())
        .into_iter()
        .find_map(|c| match c {
            crate::core::sip::endpoint::CallCommand::ReInviteAnswer { sdp } => Some(sdp),
            _ => None,
        })
        .expect("refresh answered");
    let again = crate::core::sip::sdp::parse(&String::from_utf8_lossy(&again)).expect("sdp");
    assert_eq!(
        Crypto::parse(&again.media[0].crypto[0])
            .expect("key")
            .key_salt,
        ours.key_salt
    );
}

#[test]
fn srtcp_on_the_rtp_port_is_checked_as_srtcp_and_not_media() {
    let mut settings = settings();
    settings.answer.srtp = SrtpParams {
        mode: SrtpUse::Required,
        key_material: [9; 32],
    };
    let mut s = setup(Route::Static(raw_agent()));
    s.offer = Some(savp_offer());
    let mut h = H::new(s, settings);
    h.agent_up();
    h.lease(Some(PORT));
    let answer = answer_sdp(&h.take());
    h.sip(CallEvent::Acked { sdp: None });
    let ours = Crypto::parse(&answer.media[0].crypto[0]).expect("our key");
    let mut caller = SrtpSession::new(&caller_key(), &ours).expect("caller's session");
    // A receiver report (RFC 3550 §6.4.2, no report blocks), multiplexed (RFC 5761).
    let rr = [0x80, 201, 0x00, 0x01, 0x12, 0x34, 0x56, 0x78];
    let srtcp = caller.protect_rtcp(&rr).expect("protect");
    h.caller_datagram(&srtcp);
    h.caller_datagram(&srtcp); // a replay: refused
    let mut forged = caller.protect_rtcp(&rr).expect("protect").to_vec();
    forged[5] ^= 1;
    h.caller_datagram(&forged); // refused
    let pcm = tone(160);
    let audio = caller
        .protect_rtp(&audio_packet(0, 1, 160, &pcm))
        .expect("protect");
    h.caller_datagram(&audio);
    assert_eq!(
        agent_binaries(&h.take()).len(),
        1,
        "only the audio is media"
    );
    let e = h.dialog_ends(SipEnd::RemoteBye);
    assert_eq!(e.rtp_in, 1);
    assert_eq!(e.srtp_refused, 2, "the replayed and the forged SRTCP");
}
