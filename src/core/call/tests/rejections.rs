//! Calls refused before the answer: no route (404), an offer we cannot read or answer (488),
//! no RTP port (503), the agent unreachable (480). Each ends with the dialog's end.

use super::harness::*;
use crate::core::call::{CallStatus, EndReason, Route};
use crate::core::sip::endpoint::{CallCommand, EndReason as SipEnd};

/// The endpoint's answer to our rejection, and what the call ended as.
fn rejected_with(h: &mut H, status: u16) -> crate::core::call::Ended {
    let e = h.dialog_ends(SipEnd::Rejected(status)).clone();
    assert_eq!(h.take(), vec![Ev::Ended]);
    assert_eq!(e.sip_end, Some(SipEnd::Rejected(status)));
    assert_eq!(e.view.sip_status, Some(status));
    assert_eq!(e.view.answered_at, None);
    assert_eq!(e.view.duration_s, 0.0);
    assert_eq!((e.rtp_in, e.rtp_out), (0, 0));
    e
}

#[test]
fn no_route_is_404_no_route() {
    let mut h = H::with_route(Route::None);
    assert_eq!(h.take(), vec![reject(404)]);
    let e = rejected_with(&mut h, 404);
    assert_eq!(e.reason, EndReason::NoRoute);
    assert_eq!(e.view.end_reason.as_deref(), Some("no_route"));
    assert_eq!(e.view.status, CallStatus::Failed);
    assert_eq!(e.view.ended_at, Some(wall(0)));
}

#[test]
fn unparsable_sdp_is_488_before_the_agent_is_dialled() {
    let mut s = setup(Route::Static(raw_agent()));
    s.offer = Some(b"this is not SDP".to_vec());
    let mut h = H::new(s, settings());
    // Neither ringing nor an agent connect: the offer is checked first.
    assert_eq!(h.take(), vec![reject(488)]);
    let e = rejected_with(&mut h, 488);
    assert_eq!(e.reason, EndReason::SdpUnparsable);
    assert_eq!(e.view.end_reason.as_deref(), Some("sdp_unparsable"));
    assert_eq!(e.view.status, CallStatus::Failed);
}

#[test]
fn no_common_codec_is_488() {
    let mut s = setup(Route::Static(raw_agent()));
    let g729 = OFFER
        .replace("RTP/AVP 0 101", "RTP/AVP 18")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:18 G729/8000");
    s.offer = Some(g729.into_bytes());
    let mut h = H::new(s, settings());
    assert_eq!(h.take(), vec![reject(488)]);
    let e = rejected_with(&mut h, 488);
    assert_eq!(e.reason, EndReason::NoCommonCodec);
    assert_eq!(e.view.end_reason.as_deref(), Some("no_common_codec"));
}

#[test]
fn no_rtp_port_is_503_no_media_ports() {
    let mut h = H::with_route(Route::Static(echo(None)));
    assert_eq!(h.take(), vec![Ev::Lease]);
    h.lease(None);
    assert_eq!(h.take(), vec![reject(503)]);
    let e = rejected_with(&mut h, 503);
    assert_eq!(e.reason, EndReason::NoMediaPorts);
    assert_eq!(e.view.end_reason.as_deref(), Some("no_media_ports"));
    assert_eq!(e.view.status, CallStatus::Failed);
}

#[test]
fn agent_connect_failure_is_480_agent_connect_failed() {
    let mut h = H::with_route(Route::Static(raw_agent()));
    assert_eq!(
        signalling(&h.take()),
        vec![
            Ev::Notice(crate::core::call::Notice::Ringing),
            Ev::Sip(CallCommand::Ringing),
            Ev::Connect(AGENT_URL.into())
        ]
    );
    h.advance_to(ms(3000));
    h.agent_fails();
    assert_eq!(h.take(), vec![reject(480)]);
    let e = rejected_with(&mut h, 480);
    assert_eq!(e.reason, EndReason::AgentConnectFailed);
    assert_eq!(e.view.end_reason.as_deref(), Some("agent_connect_failed"));
    assert_eq!(e.view.status, CallStatus::Failed);
    assert_eq!(e.view.ended_at, Some(wall(3)));
}

#[test]
fn agent_socket_closing_while_connecting_is_480_too() {
    let mut h = H::with_route(Route::Static(raw_agent()));
    h.take();
    h.input(crate::core::call::Input::AgentClosed {
        leg: crate::core::call::leg::ANSWERER,
    });
    assert_eq!(h.take(), vec![reject(480)]);
    let e = rejected_with(&mut h, 480);
    assert_eq!(e.reason, EndReason::AgentConnectFailed);
}
