//! Scenario tests of the call machine with a virtual clock: one test per lifecycle path, each
//! asserting the SIP commands, agent messages and RTP packets the machine produces and the
//! call's end (its `EndReason` and view). The harness (`harness.rs`) plays the driver.

mod agent_leg;
mod bridge;
mod ending;
mod harness;
mod media_dtmf;
mod media_flow;
mod outbound;
mod recording;
mod rejections;
mod srtp;
mod static_route;
mod transfer;
mod webhook;
