//! Bridged legs: a `bridge` transfer (the target dialled as a second SIP leg; ringback, early
//! media, answer → the agent leaves and audio is relayed PCMU⇄PCMA both ways with DTMF; busy,
//! ring timeout → the agent resumes; either side's BYE ends both) and click-to-call (the
//! manager answers, the client is dialled; a failed client → tone, then BYE).

use std::net::SocketAddr;

use super::harness::*;
use crate::core::call::dial::{DialPlan, OnAnswer};
use crate::core::call::transfer::{Fallback, Mode, Outcome, Policy, Request};
use crate::core::call::{CallStatus, Command, EndReason, Input, Notice, Route};
use crate::core::media::{g711, rtp, tone::detect_tone};
use crate::core::sip::endpoint::{CallCommand, CallEvent, EndReason as SipEnd};

const TARGET: &str = "+15550009999";
/// The target answers PCMA from here (the caller speaks PCMU).
const TARGET_RTP: &str = "203.0.113.9:30000";
const TARGET_ANSWER: &str = "v=0\r\n\
o=target 1 1 IN IP4 203.0.113.9\r\n\
s=-\r\n\
c=IN IP4 203.0.113.9\r\n\
t=0 0\r\n\
m=audio 30000 RTP/AVP 8 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=sendrecv\r\n";
const BRIDGE_PORT: u16 = 40002;

fn target_addr() -> SocketAddr {
    TARGET_RTP.parse().expect("addr")
}

fn bridge_policy() -> Policy {
    Policy {
        mode: Mode::Bridge,
        ring_timeout: ms(20_000),
        ..Policy::default()
    }
}

/// An answered raw-agent call, acknowledged, whose transfers go by `bridge`.
fn answered_call() -> H {
    let mut s = setup(Route::Static(raw_agent()));
    s.transfer = bridge_policy();
    let mut h = H::new(s, settings());
    h.agent_up();
    h.lease(Some(PORT));
    h.sip(CallEvent::Acked { sdp: None });
    h.take();
    h
}

fn transfer(h: &mut H, fallback: Fallback) {
    h.input(Input::Command(Command::Transfer(Request {
        to: TARGET.into(),
        mode: None,
        fallback: Some(fallback),
    })));
}

fn bsip(h: &mut H, event: CallEvent) {
    h.input(Input::Sip {
        leg: BRIDGED,
        event,
    });
}

/// Leases the bridged leg's port and expects its INVITE to `to`.
fn lease_and_dial(h: &mut H, to: &str) {
    assert!(h.take().contains(&Ev::BridgeLease));
    h.input(Input::Port {
        leg: BRIDGED,
        port: Some(BRIDGE_PORT),
    });
    let evs = h.take();
    let dial = evs.iter().find_map(|e| match e {
        Ev::BridgeDial(t, offer) => Some((t.clone(), offer.clone())),
        _ => None,
    });
    let (t, offer) = dial.expect("the bridged leg's INVITE");
    assert_eq!(t, to);
    assert!(String::from_utf8_lossy(&offer).contains(&format!("m=audio {BRIDGE_PORT} ")));
}

/// One 20 ms PCMA packet of `pcm` from the target.
fn target_audio(h: &mut H, seq: u16, pcm: &[i16]) {
    let mut payload = vec![0u8; pcm.len()];
    g711::encode_alaw(pcm, &mut payload);
    let header = rtp::RtpHeader {
        marker: false,
        payload_type: 8,
        sequence: seq,
        timestamp: u32::from(seq) * 160,
        ssrc: 0x7A7A,
    };
    let mut pkt = Vec::new();
    rtp::write(&header, &payload, &mut pkt);
    h.input(Input::Rtp {
        leg: BRIDGED,
        data: &pkt,
        from: target_addr(),
    });
}

fn bridge_packets(evs: &[Ev]) -> Vec<Pkt> {
    evs.iter()
        .filter_map(|e| match e {
            Ev::BridgeRtp(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

fn decoded(pkts: &[Pkt], alaw: bool) -> Vec<i16> {
    let mut out = Vec::new();
    for p in pkts.iter().filter(|p| p.header.payload_type < 96) {
        let mut pcm = vec![0i16; p.payload.len()];
        if alaw {
            g711::decode_alaw(&p.payload, &mut pcm);
        } else {
            g711::decode_ulaw(&p.payload, &mut pcm);
        }
        out.extend(pcm);
    }
    out
}

fn outcomes(evs: &[Ev]) -> Vec<(Mode, Outcome, Option<u16>)> {
    evs.iter()
        .filter_map(|e| match e {
            Ev::Notice(Notice::Transfer(p)) => Some((p.mode, p.outcome, p.sip_status)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_bridge_transfer_rings_then_relays_both_ways_transcoded_and_the_target_bye_ends_all() {
    let mut h = answered_call();
    transfer(&mut h, Fallback::Resume);
    lease_and_dial(&mut h, TARGET);
    // While the target rings the caller hears ringback (440+480 Hz), not the agent.
    h.agent_pcm(&tone(800));
    h.advance(ms(1000));
    let evs = h.take();
    let heard = decoded(&packets(&evs), false);
    assert!(detect_tone(&heard, 8000, 440.0) > 0.2, "ringback");
    assert!(detect_tone(&heard, 8000, 400.0) < 0.1, "no agent audio");
    // Caller audio does not reach the agent meanwhile.
    h.caller_audio(&tone(160));
    assert!(agent_binaries(&h.take()).is_empty());
    bsip(
        &mut h,
        CallEvent::Progress {
            status: 180,
            sdp: None,
        },
    );
    assert_eq!(h.call.view(h.now).bridge.expect("bridge").status, "ringing");
    bsip(
        &mut h,
        CallEvent::Answered {
            sdp: Some(TARGET_ANSWER.as_bytes().to_vec()),
        },
    );
    let evs = h.take();
    assert_eq!(
        outcomes(&evs),
        vec![(Mode::Bridge, Outcome::Succeeded, Some(200))]
    );
    assert!(evs.contains(&Ev::Close), "the agent leaves: {evs:?}");
    // Caller PCMU → target PCMA.
    for _ in 0..10 {
        h.caller_audio(&tone(160));
        h.advance(ms(20));
    }
    let to_target = bridge_packets(&h.take());
    assert!(to_target
        .iter()
        .all(|p| p.header.payload_type == 8 && p.to == target_addr()));
    assert!(detect_tone(&decoded(&to_target, true), 8000, 400.0) > 0.5);
    // Target PCMA → caller PCMU.
    for seq in 1..=10 {
        target_audio(&mut h, seq, &tone(160));
        h.advance(ms(20));
    }
    let to_caller = packets(&h.take());
    assert!(to_caller.iter().all(|p| p.header.payload_type == 0));
    assert!(detect_tone(&decoded(&to_caller, false), 8000, 400.0) > 0.5);
    // A caller digit is passed on as RFC 4733 on the target's leg.
    h.caller_digit('7');
    h.advance(ms(200));
    let evs = h.take();
    assert!(evs.contains(&Ev::Notice(Notice::Dtmf('7'))));
    assert!(bridge_packets(&evs)
        .iter()
        .any(|p| p.header.payload_type == 101 && p.payload.first() == Some(&7)));
    // The target hangs up: the caller gets BYE, the call ends target_hangup.
    bsip(&mut h, CallEvent::Ended(SipEnd::RemoteBye));
    assert_eq!(sip_cmds(&h.take()), vec![CallCommand::Hangup]);
    let e = h.dialog_ends(SipEnd::LocalBye(200)).clone();
    assert_eq!(e.reason, EndReason::TargetHangup);
    assert_eq!(e.view.status, CallStatus::Completed);
    let b = e.view.bridge.expect("the record keeps the bridged leg");
    assert_eq!((b.to.as_str(), b.status.as_str()), (TARGET, "completed"));
    let t = e.view.transfer.expect("transfer");
    assert_eq!((t.mode, t.outcome), (Mode::Bridge, Outcome::Succeeded));
}

#[test]
fn a_busy_target_resumes_the_agent() {
    let mut h = answered_call();
    transfer(&mut h, Fallback::Resume);
    lease_and_dial(&mut h, TARGET);
    bsip(&mut h, CallEvent::Ended(SipEnd::Refused(486)));
    let evs = h.take();
    assert_eq!(
        outcomes(&evs),
        vec![(Mode::Bridge, Outcome::Failed, Some(486))]
    );
    let told: Vec<_> = agent_json(&evs)
        .into_iter()
        .filter(|j| j["type"] == "transfer")
        .collect();
    assert_eq!(told[0]["outcome"], "failed", "{told:?}");
    // The agent is heard again, and hears the caller.
    h.agent_pcm(&tone(320));
    h.advance(ms(60));
    let heard = decoded(&packets(&h.take()), false);
    assert!(detect_tone(&heard, 8000, 400.0) > 0.5);
    h.caller_audio(&tone(160));
    assert!(!agent_binaries(&h.take()).is_empty());
    assert!(!h.call.is_ended());
    assert_eq!(h.call.view(h.now).bridge.expect("bridge").status, "busy");
}

#[test]
fn a_target_ringing_past_its_timeout_is_cancelled_and_the_agent_resumes() {
    let mut h = answered_call();
    transfer(&mut h, Fallback::Resume);
    lease_and_dial(&mut h, TARGET);
    h.advance(ms(19_900));
    assert!(outcomes(&h.take()).is_empty());
    h.advance(ms(200));
    let evs = h.take();
    assert!(evs.contains(&Ev::BridgeSip(CallCommand::Hangup)), "CANCEL");
    assert_eq!(
        outcomes(&evs),
        vec![(Mode::Bridge, Outcome::Failed, Some(408))]
    );
    // The CANCEL's 487 arrives later and changes nothing.
    bsip(&mut h, CallEvent::Ended(SipEnd::Canceled));
    assert!(outcomes(&h.take()).is_empty());
    assert!(!h.call.is_ended());
}

#[test]
fn the_caller_hanging_up_while_the_target_rings_cancels_it() {
    let mut h = answered_call();
    transfer(&mut h, Fallback::Resume);
    lease_and_dial(&mut h, TARGET);
    let e = h.dialog_ends(SipEnd::RemoteBye).clone();
    assert_eq!(e.reason, EndReason::CallerHangup);
    assert!(h.take().contains(&Ev::BridgeSip(CallCommand::Hangup)));
}

#[test]
fn early_media_from_the_target_replaces_ringback() {
    let mut h = answered_call();
    transfer(&mut h, Fallback::Resume);
    lease_and_dial(&mut h, TARGET);
    bsip(
        &mut h,
        CallEvent::Progress {
            status: 183,
            sdp: Some(TARGET_ANSWER.as_bytes().to_vec()),
        },
    );
    h.take();
    for seq in 1..=10 {
        target_audio(&mut h, seq, &tone(160));
        h.advance(ms(20));
    }
    let heard = decoded(&packets(&h.take()), false);
    assert!(
        detect_tone(&heard, 8000, 400.0) > 0.5,
        "the target's early media"
    );
    assert!(detect_tone(&heard, 8000, 440.0) < 0.1, "no ringback");
    // The 2xx without SDP keeps the early answer.
    bsip(&mut h, CallEvent::Answered { sdp: None });
    assert_eq!(
        outcomes(&h.take()),
        vec![(Mode::Bridge, Outcome::Succeeded, Some(200))]
    );
}

#[test]
fn an_api_hangup_while_bridged_ends_both_legs() {
    let mut h = answered_call();
    transfer(&mut h, Fallback::Resume);
    lease_and_dial(&mut h, TARGET);
    bsip(
        &mut h,
        CallEvent::Answered {
            sdp: Some(TARGET_ANSWER.as_bytes().to_vec()),
        },
    );
    h.take();
    h.input(Input::Command(Command::Hangup));
    let evs = h.take();
    assert!(evs.contains(&Ev::Sip(CallCommand::Hangup)));
    assert!(evs.contains(&Ev::BridgeSip(CallCommand::Hangup)));
    let e = h.dialog_ends(SipEnd::LocalBye(200)).clone();
    assert_eq!(e.reason, EndReason::ApiHangup);
    // One BYE per leg, not a second one at the end.
    assert!(!h.take().contains(&Ev::BridgeSip(CallCommand::Hangup)));
}

#[test]
fn a_refused_refer_falls_back_to_a_bridge() {
    let mut s = setup(Route::Static(raw_agent()));
    s.transfer = Policy {
        mode: Mode::Refer,
        ..bridge_policy()
    };
    let mut h = H::new(s, settings());
    h.agent_up();
    h.lease(Some(PORT));
    h.sip(CallEvent::Acked { sdp: None });
    h.take();
    transfer(&mut h, Fallback::Bridge);
    assert!(matches!(
        sip_cmds(&h.take()).as_slice(),
        [CallCommand::Refer { .. }]
    ));
    h.sip(CallEvent::ReferResult { status: 403 });
    let evs = h.take();
    assert_eq!(
        outcomes(&evs),
        vec![
            (Mode::Refer, Outcome::Failed, Some(403)),
            (Mode::Bridge, Outcome::Trying, None)
        ]
    );
    assert!(evs.contains(&Ev::BridgeLease));
}

fn click_to_call() -> H {
    let mut h = outbound(DialPlan {
        answerer: OnAnswer::Bridge {
            to: "+15550004444".into(),
        },
        ring_timeout: ms(25_000),
        time_limit: None,
        early_media: false,
    });
    h.take();
    h.lease(Some(PORT));
    h.take();
    h
}

/// The manager (the call's own callee) answers.
fn manager_answers(h: &mut H) {
    h.sip(CallEvent::Answered {
        sdp: Some(CALLEE_ANSWER.as_bytes().to_vec()),
    });
}

#[test]
fn click_to_call_rings_the_manager_then_bridges_the_client() {
    let mut h = click_to_call();
    assert!(!h.take().contains(&Ev::BridgeLease), "the client waits");
    manager_answers(&mut h);
    lease_and_dial(&mut h, "+15550004444");
    // The manager hears ringback while the client rings.
    h.advance(ms(500));
    let heard = decoded(&packets(&h.take()), true);
    assert!(detect_tone(&heard, 8000, 480.0) > 0.2, "ringback");
    bsip(
        &mut h,
        CallEvent::Answered {
            sdp: Some(TARGET_ANSWER.as_bytes().to_vec()),
        },
    );
    assert!(h.take().contains(&Ev::Notice(Notice::Bridged)));
    for seq in 1..=5 {
        target_audio(&mut h, seq, &tone(160));
        h.caller_datagram(&audio_packet(8, seq, u32::from(seq) * 160, &tone(160)));
        h.advance(ms(20));
    }
    let evs = h.take();
    assert!(!packets(&evs).is_empty() && !bridge_packets(&evs).is_empty());
    // The manager hangs up: the client gets BYE.
    let e = h.dialog_ends(SipEnd::RemoteBye).clone();
    assert_eq!(e.reason, EndReason::CalleeHangup);
    assert!(h.take().contains(&Ev::BridgeSip(CallCommand::Hangup)));
    assert_eq!(e.view.bridge.expect("client leg").status, "completed");
}

#[test]
fn a_busy_client_gives_the_manager_a_tone_then_bye() {
    let mut h = click_to_call();
    manager_answers(&mut h);
    lease_and_dial(&mut h, "+15550004444");
    bsip(&mut h, CallEvent::Ended(SipEnd::Refused(486)));
    h.take();
    h.advance(ms(1000));
    let evs = h.take();
    assert!(sip_cmds(&evs).is_empty(), "the tone plays first");
    let heard = decoded(&packets(&evs), true);
    assert!(detect_tone(&heard, 8000, 620.0) > 0.1, "the failure tone");
    h.advance(ms(600));
    assert_eq!(sip_cmds(&h.take()), vec![CallCommand::Hangup]);
    let e = h.dialog_ends(SipEnd::LocalBye(200)).clone();
    assert_eq!(e.reason, EndReason::Target(486));
    assert_eq!(e.view.end_reason.as_deref(), Some("target_busy"));
    assert_eq!(e.view.status, CallStatus::Completed);
    let b = e.view.bridge.expect("client leg");
    assert_eq!((b.status.as_str(), b.sip_status), ("busy", Some(486)));
}

#[test]
fn a_manager_who_never_answers_means_the_client_is_never_dialled() {
    let mut h = click_to_call();
    h.advance(ms(25_100));
    let evs = h.take();
    assert_eq!(sip_cmds(&evs), vec![CallCommand::Hangup]);
    let e = h.dialog_ends(SipEnd::Refused(487)).clone();
    assert_eq!(e.view.status, CallStatus::NoAnswer);
    assert!(e.view.bridge.is_none());
    assert!(!h.take().contains(&Ev::BridgeLease));
}

#[test]
fn a_client_who_never_answers_is_cancelled_then_the_manager_hears_the_tone_and_bye() {
    let mut h = click_to_call();
    manager_answers(&mut h);
    lease_and_dial(&mut h, "+15550004444");
    h.advance(ms(25_100));
    let evs = h.take();
    assert!(evs.contains(&Ev::BridgeSip(CallCommand::Hangup)), "CANCEL");
    assert!(sip_cmds(&evs).is_empty(), "the tone plays first");
    h.advance(ms(1600));
    assert_eq!(sip_cmds(&h.take()), vec![CallCommand::Hangup]);
    let e = h.dialog_ends(SipEnd::LocalBye(200)).clone();
    assert_eq!(e.view.end_reason.as_deref(), Some("target_no_answer"));
    assert_eq!(e.view.bridge.expect("client leg").status, "no-answer");
}

/// A bridge toward an SRTP trunk: the bridged leg offers RTP/SAVP with a key of its own
/// (derived, not the first leg's), takes the target's key from its answer, and relays
/// decrypted audio to a plain caller both ways.
#[test]
fn a_bridged_leg_on_srtp_has_its_own_key_and_relays_both_ways() {
    use crate::core::media::srtp::SrtpSession;
    use crate::core::sip::sdp::crypto::{Crypto, Suite};
    use crate::core::sip::sdp::{SrtpParams, SrtpUse};
    let mut settings = settings();
    settings.answer.srtp = SrtpParams {
        mode: SrtpUse::Off,
        key_material: [9; 32],
    };
    settings.bridge_srtp = SrtpUse::Required;
    let mut s = setup(Route::Static(raw_agent()));
    s.transfer = bridge_policy();
    let mut h = H::new(s, settings);
    h.agent_up();
    h.lease(Some(PORT));
    h.sip(CallEvent::Acked { sdp: None });
    h.take();
    transfer(&mut h, Fallback::Resume);
    assert!(h.take().contains(&Ev::BridgeLease));
    h.input(Input::Port {
        leg: BRIDGED,
        port: Some(BRIDGE_PORT),
    });
    let offer = h
        .take()
        .into_iter()
        .find_map(|e| match e {
            Ev::BridgeDial(_, offer) => Some(offer),
            _ => None,
        })
        .expect("the bridged leg's INVITE");
    let offer = crate::core::sip::sdp::parse(&String::from_utf8_lossy(&offer)).expect("sdp");
    assert_eq!(offer.media[0].proto, "RTP/SAVP");
    let ours = offer.media[0]
        .crypto
        .iter()
        .filter_map(|c| Crypto::parse(c).ok())
        .find(|c| c.suite == Suite::AesCm128HmacSha1_80)
        .expect("an 80-bit key offered");
    assert_ne!(ours.key_salt, vec![9; 30], "not the call's own material");
    let theirs = Crypto {
        tag: ours.tag,
        suite: ours.suite,
        key_salt: vec![5; 30],
    };
    let answer = TARGET_ANSWER.replace("RTP/AVP", "RTP/SAVP").replace(
        "a=sendrecv\r\n",
        &format!("a=sendrecv\r\na=crypto:{}\r\n", theirs.value()),
    );
    bsip(
        &mut h,
        CallEvent::Answered {
            sdp: Some(answer.into_bytes()),
        },
    );
    h.take();
    let mut target = SrtpSession::new(&theirs, &ours).expect("target's session");
    // Target → caller: protected PCMA is decrypted and reaches the caller as PCMU.
    for seq in 1..=10u16 {
        let mut payload = vec![0u8; 160];
        g711::encode_alaw(&tone(160), &mut payload);
        let header = rtp::RtpHeader {
            marker: false,
            payload_type: 8,
            sequence: seq,
            timestamp: u32::from(seq) * 160,
            ssrc: 0x7A7A,
        };
        let mut plain = Vec::new();
        rtp::write(&header, &payload, &mut plain);
        let wire = target.protect_rtp(&plain).expect("protect");
        h.input(Input::Rtp {
            leg: BRIDGED,
            data: &wire,
            from: target_addr(),
        });
        h.advance(ms(20));
    }
    let to_caller = packets(&h.take());
    assert!(detect_tone(&decoded(&to_caller, false), 8000, 400.0) > 0.5);
    // Caller → target: what goes to the target decrypts with the key we offered.
    for _ in 0..10 {
        h.caller_audio(&tone(160));
        h.advance(ms(20));
    }
    let to_target = bridge_packets(&h.take());
    assert!(!to_target.is_empty());
    let mut heard = Vec::new();
    for p in &to_target {
        let mut wire = Vec::new();
        rtp::write(&p.header, &p.payload, &mut wire);
        let plain = target.unprotect_rtp(&wire).expect("decrypts with our key");
        let pkt = rtp::parse(&plain).expect("rtp");
        let mut pcm = vec![0i16; pkt.payload.len()];
        g711::decode_alaw(pkt.payload, &mut pcm);
        heard.extend(pcm);
    }
    assert!(detect_tone(&heard, 8000, 400.0) > 0.5);
}
