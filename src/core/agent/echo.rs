//! The built-in demo agent: echoes the caller's audio back and answers each DTMF digit it
//! hears with that digit's tone (so a caller hears both directions work).
//!
//! Pure: audio in and out as 8 kHz PCM frames; the call task does the pacing.

use std::collections::VecDeque;

use crate::core::media::dtmf::dtmf_freqs;
use crate::core::media::tone::ToneGen;

/// At most this much caller audio waits to be echoed (older audio is dropped).
const MAX_QUEUE_SAMPLES: usize = 8000 / 2;
/// How long each digit's answering tone lasts.
const TONE_MS: u32 = 300;

pub struct EchoAgent {
    rate: u32,
    queue: VecDeque<i16>,
    digits: VecDeque<char>,
    tone: Option<(ToneGen, usize)>,
}

impl EchoAgent {
    pub fn new(rate: u32) -> Self {
        EchoAgent {
            rate,
            queue: VecDeque::with_capacity(MAX_QUEUE_SAMPLES),
            digits: VecDeque::new(),
            tone: None,
        }
    }

    pub fn on_audio(&mut self, pcm: &[i16]) {
        self.queue.extend(pcm.iter().copied());
        let excess = self.queue.len().saturating_sub(MAX_QUEUE_SAMPLES);
        self.queue.drain(..excess);
    }

    pub fn on_dtmf(&mut self, digit: char) {
        if self.digits.len() < 32 {
            self.digits.push_back(digit);
        }
    }

    /// Fills one frame of outgoing audio: a digit tone while one plays, else echoed audio,
    /// else silence.
    pub fn next_frame(&mut self, out: &mut [i16]) {
        if self.tone.is_none() {
            if let Some(d) = self.digits.pop_front() {
                if let Some((lo, hi)) = dtmf_freqs(d) {
                    let samples = (self.rate * TONE_MS / 1000) as usize;
                    self.tone = Some((ToneGen::dual(lo, hi, 8000.0, self.rate), samples));
                    // The echo of what was said before the digit is stale now.
                    self.queue.clear();
                }
            }
        }
        if let Some((gen, left)) = &mut self.tone {
            gen.fill(out);
            *left = left.saturating_sub(out.len());
            if *left == 0 {
                self.tone = None;
            }
            // Audio that arrived during the tone is not echoed after it.
            self.queue.clear();
            return;
        }
        for s in out.iter_mut() {
            *s = self.queue.pop_front().unwrap_or(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::media::tone::detect_dtmf;

    #[test]
    fn echoes_audio_in_order() {
        let mut a = EchoAgent::new(8000);
        let input: Vec<i16> = (0..160).map(|i| i as i16 * 10).collect();
        a.on_audio(&input);
        let mut out = [0i16; 160];
        a.next_frame(&mut out);
        assert_eq!(&out[..], &input[..]);
        a.next_frame(&mut out);
        assert!(out.iter().all(|&s| s == 0), "silence when nothing queued");
    }

    #[test]
    fn digit_becomes_its_tone() {
        let mut a = EchoAgent::new(8000);
        a.on_dtmf('5');
        let mut out = [0i16; 320];
        a.next_frame(&mut out);
        assert_eq!(detect_dtmf(&out, 8000), Some('5'));
    }

    #[test]
    fn queue_is_bounded() {
        let mut a = EchoAgent::new(8000);
        for _ in 0..100 {
            a.on_audio(&[1i16; 160]);
        }
        assert!(a.queue.len() <= MAX_QUEUE_SAMPLES);
    }
}
