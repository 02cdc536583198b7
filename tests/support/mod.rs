//! Test support: a scripted SIP UA, a test RTP peer, gateway start-up, WAV files, recorded
//! calls, crash-restart set-up, a fake transcriber's helpers, and the harness that drives a
//! real baresip.

#![allow(dead_code)]

pub mod admit;
pub mod agent;
pub mod api;
#[allow(dead_code)]
pub mod baresip;
pub mod bridge;
pub mod call;
pub mod caller;
pub mod daemon;
pub mod gw;
pub mod http;
pub mod leg;
pub mod mutate;
pub mod phone;
pub mod pki;
pub mod placing;
pub mod recorded;
pub mod restart;
pub mod rtp;
pub mod schema;
pub mod sink;
pub mod transcriber;
pub mod trunk;
pub mod ua;
#[allow(dead_code)]
pub mod wav;
