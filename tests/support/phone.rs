//! A real phone for daemon tests: a baresip that answers as a given user, plays a tone and
//! records what it hears (transfer targets, click-to-call's manager and client), and the tone
//! count that checks audio by content.

use super::baresip::{Baresip, BaresipOptions, TempDir, Transport};
use super::wav;
use trunkgate::core::media::tone::detect_tone;

/// A baresip answering as `user`, playing `freq`, recording what it hears — or `None` (with
/// a note) when baresip is not installed (`scripts/test.sh` installs it).
pub async fn phone(dir: &TempDir, user: &str, freq: f32) -> Option<Baresip> {
    phone_with(dir, user, freq, true).await
}

/// The same, answering only when told (`auto_answer` off: it rings until `answer`, and
/// `hangup` while ringing rejects the call with 486).
pub async fn phone_with(
    dir: &TempDir,
    user: &str,
    freq: f32,
    auto_answer: bool,
) -> Option<Baresip> {
    let play = dir.path().join(format!("play-{freq}.wav"));
    // Longer than the call: baresip hangs up when its play file ends.
    let mut samples = wav::silence(200, 8000);
    samples.extend(wav::tone(f64::from(freq), 20_000, 0.5, 8000));
    wav::write_wav_8k(&play, &samples).expect("write play.wav");
    let mut opts = BaresipOptions::new(Transport::Udp, &play);
    if !opts.binary.exists() {
        eprintln!(
            "note: {} not installed; skipping (scripts/test.sh installs baresip)",
            opts.binary.display()
        );
        return None;
    }
    opts.user = user.into();
    opts.auto_answer = auto_answer;
    opts.record_wav = Some(dir.path().join(format!("heard-{freq}.wav")));
    Some(Baresip::start(opts).await.expect("baresip starts"))
}

/// How many 20 ms pieces of `pcm` (at `rate`) hold `freq`.
pub fn tone_frames(pcm: &[i16], rate: u32, freq: f32) -> usize {
    let n = (rate / 50).max(1) as usize;
    pcm.chunks(n)
        .filter(|c| c.len() == n && detect_tone(c, rate, freq) > 0.5)
        .count()
}

/// Frames of `freq` in what `ua` recorded.
pub async fn recorded_frames(ua: &mut Baresip, dir: &TempDir, freq: f32) -> usize {
    let dest = dir.path().join(format!("saved-{}.wav", ua.ports().sip));
    let path = ua.save_recording(&dest).await.expect("baresip's recording");
    let rec = wav::read_wav(&path).expect("read recording");
    tone_frames(&rec.samples, rec.sample_rate, freq)
}
