//! The daily voice-minutes cap in real time. A minute is the smallest cap there is, so this
//! test takes just over a minute; it is its own binary so nothing else waits on it longer
//! than needed. Unit tests (src/core/policy/tests/minutes.rs) cover days, zones and sharing.

mod support;

use std::time::{Duration, Instant};

use support::admit::{number, Spec};
use support::call::{answer, retry_after, Call};
use support::gw::wait_event;
use support::rtp::RtpPeer;
use support::ua::Ua;
use trunkgate::app::GatewayEvent;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_minutes_cap_cuts_the_running_call_then_refuses_new_ones_with_480() {
    let layers = number("+48700000001", "daily_minutes_cap = 1");
    let (gw, _dir) = Spec::new((36500, 36519), "").layers(&layers).start().await;
    let mut events = gw.subscribe();
    let mut rtp = RtpPeer::bind().await;
    let rtp_addr = rtp.addr();
    let mut ua = Ua::udp(gw.udp_addrs[0]).await;
    let admitted_at = Instant::now();
    let mut call = Call::new().did("+48700000001");
    let ok = call.establish(&mut ua, rtp_addr).await;
    let media = ok.sdp_media().expect("SDP answer");
    // Keep media flowing (silence) so the RTP timeout is not what ends the call.
    let streamer = tokio::spawn(async move { rtp.stream(media, 0.0, 4000).await });
    let bye = ua
        .expect(Duration::from_secs(75), "BYE at the daily cap", |m| {
            m.method() == Some("BYE")
        })
        .await;
    let after = admitted_at.elapsed();
    streamer.abort();
    answer(&mut ua, &bye, 200).await;
    assert!(
        after >= Duration::from_secs(59) && after < Duration::from_secs(66),
        "cut {after:?} after admission"
    );
    let ended = wait_event(&mut events, Duration::from_secs(5), |e| {
        matches!(e, GatewayEvent::CallEnded { .. })
    })
    .await;
    let GatewayEvent::CallEnded { end_reason, .. } = ended else {
        unreachable!()
    };
    assert_eq!(end_reason, "minutes_cap");
    // The minute is used up: the next call to that number gets 480 until the next day.
    let spare = RtpPeer::bind().await;
    let mut next = Call::new().did("+48700000001");
    let refused = next.refused(&mut ua, spare.addr(), 480).await;
    let wait = retry_after(&refused).expect("Retry-After");
    assert!(wait > 0 && wait <= 86_400, "Retry-After {wait}");
    // Another number is not affected.
    let mut other = Call::new().did("+48700000002");
    other.establish(&mut ua, spare.addr()).await;
    other.hang_up(&mut ua).await;
}
