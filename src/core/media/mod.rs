//! Media-plane core: pure codecs and packet formats for the per-call RTP hot path.
//! Nothing here touches sockets, timers or the clock; callers pass bytes, samples and timestamps.
pub mod dtmf;
pub mod frame_clock;
pub mod g711;
pub mod pacer;
pub mod rechunk;
pub mod resample;
pub mod rtp;
pub mod rx_loss;
pub mod srtp;
pub mod tone;
pub mod vad;
pub mod wav;
