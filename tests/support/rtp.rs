//! A test RTP peer: streams real-time PCMU (a tone, or silence) to the gateway, sends RFC 4733
//! DTMF, and collects what comes back, decoded to PCM.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use trunkgate::core::media::dtmf::DtmfSender;
use trunkgate::core::media::{g711, rtp, tone::ToneGen};

pub struct RtpPeer {
    pub sock: UdpSocket,
    seq: u16,
    ts: u32,
    ssrc: u32,
    pub received: Vec<i16>,
    pub packets_in: usize,
}

impl RtpPeer {
    pub async fn bind() -> RtpPeer {
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind rtp");
        RtpPeer {
            sock,
            seq: 1,
            ts: 0,
            ssrc: 0x1234_5678,
            received: Vec::new(),
            packets_in: 0,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().expect("addr")
    }

    async fn send_packet(&mut self, to: SocketAddr, pt: u8, marker: bool, ts: u32, payload: &[u8]) {
        let header = rtp::RtpHeader {
            marker,
            payload_type: pt,
            sequence: self.seq,
            timestamp: ts,
            ssrc: self.ssrc,
        };
        let mut buf = Vec::new();
        rtp::write(&header, payload, &mut buf);
        self.seq = self.seq.wrapping_add(1);
        self.sock.send_to(&buf, to).await.expect("send rtp");
    }

    /// Streams `frames` 20 ms frames of `freq` Hz (0 = silence) in real time while
    /// collecting what the gateway sends back.
    pub async fn stream(&mut self, to: SocketAddr, freq: f32, frames: usize) {
        let mut gen = ToneGen::single(freq, 8000.0, 8000);
        let mut ticker = tokio::time::interval(Duration::from_millis(20));
        let mut pcm = [0i16; 160];
        let mut payload = [0u8; 160];
        let mut buf = vec![0u8; 2048];
        let mut sent = 0;
        while sent < frames {
            tokio::select! {
                _ = ticker.tick() => {
                    if freq > 0.0 { gen.fill(&mut pcm); } else { pcm = [0; 160]; }
                    g711::encode_ulaw(&pcm, &mut payload);
                    let ts = self.ts;
                    self.send_packet(to, 0, sent == 0, ts, &payload).await;
                    self.ts = self.ts.wrapping_add(160);
                    sent += 1;
                }
                r = self.sock.recv_from(&mut buf) => {
                    if let Ok((n, _)) = r { self.on_packet(&buf[..n]); }
                }
            }
        }
    }

    /// Collects what arrives for `d` of real time (used after a stream to catch the tail).
    pub async fn collect(&mut self, d: Duration) {
        let mut buf = vec![0u8; 2048];
        let end = tokio::time::Instant::now() + d;
        while let Ok(Ok((n, _))) = tokio::time::timeout_at(end, self.sock.recv_from(&mut buf)).await
        {
            let pkt = buf[..n].to_vec();
            self.on_packet(&pkt);
        }
    }

    fn on_packet(&mut self, data: &[u8]) {
        let Ok(pkt) = rtp::parse(data) else { return };
        self.packets_in += 1;
        if pkt.header.payload_type == 0 {
            let mut pcm = vec![0i16; pkt.payload.len()];
            g711::decode_ulaw(pkt.payload, &mut pcm);
            self.received.extend_from_slice(&pcm);
        }
    }

    /// Sends an RFC 4733 event for `digit` (telephone-event pt 101), paced at 20 ms.
    pub async fn send_dtmf(&mut self, to: SocketAddr, digit: char) {
        let event_ts = self.ts;
        let mut ticker = tokio::time::interval(Duration::from_millis(20));
        for p in DtmfSender::new(8000)
            .packets(digit, 100, 20, 10)
            .expect("a digit")
        {
            ticker.tick().await;
            self.send_packet(to, 101, p.marker, event_ts, &p.payload)
                .await;
        }
        self.ts = self.ts.wrapping_add(800);
    }
}
