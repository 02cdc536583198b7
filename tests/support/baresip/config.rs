//! Writes a self-contained baresip 1.0.0 configuration directory (`config`, `accounts`,
//! `contacts`) and picks free loopback ports for it. Must not: load any module that touches
//! sound hardware, the network beyond 127.0.0.1, or video; or reuse the user's ~/.baresip.

use std::fmt::Write as _;
use std::io;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::{BaresipOptions, Transport};

/// Ports one instance listens on. baresip binds UDP+TCP on `sip` and TLS on `sip + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub sip: u16,
    pub ctrl: u16,
}

/// Finds ports free right now: SIP UDP+TCP `p`, TLS TCP `p+1`, ctrl TCP. They are released
/// before baresip binds them, so a race is possible; `Baresip::start` retries on EADDRINUSE.
/// (`sip_listen 127.0.0.1:0` is no alternative: UDP and TCP then get different random ports.)
pub fn pick_ports() -> io::Result<Ports> {
    let lo = Ipv4Addr::LOCALHOST;
    for _ in 0..64 {
        let sip_tcp = TcpListener::bind((lo, 0))?;
        let sip = sip_tcp.local_addr()?.port();
        let Some(tls) = sip.checked_add(1) else {
            continue;
        };
        let (Ok(_udp), Ok(_tls)) = (UdpSocket::bind((lo, sip)), TcpListener::bind((lo, tls)))
        else {
            continue;
        };
        let ctrl_l = TcpListener::bind((lo, 0))?;
        let ctrl = ctrl_l.local_addr()?.port();
        if ctrl != tls {
            return Ok(Ports { sip, ctrl });
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no free loopback port pair found",
    ))
}

/// A directory removed on drop (set `TRUNKGATE_KEEP_BARESIP_DIR=1` to keep it for debugging).
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> io::Result<TempDir> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("{prefix}-{}-{n}-{nanos:x}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("TRUNKGATE_KEEP_BARESIP_DIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// baresip's config parser splits values on whitespace and `aufile,<path>` on the first comma,
/// and `#` starts a comment; such paths would silently mean something else.
pub fn check_config_path(p: &Path) -> io::Result<&str> {
    let s = p
        .to_str()
        .filter(|s| !s.contains(|c: char| c.is_whitespace() || c == '#'));
    s.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unusable path for baresip: {p:?}"),
        )
    })
}

pub fn config_text(opts: &BaresipOptions, ports: Ports, play: &str, rec_dir: &str) -> String {
    let mut c = String::new();
    let mut kv = |k: &str, v: &str| {
        let _ = writeln!(c, "{k:<24}{v}");
    };
    kv("poll_method", "epoll");
    kv("sip_listen", &format!("127.0.0.1:{}", ports.sip));
    // Must be an address: `lo` fails in 1.0.0 ("could not get IPv4 address"). Without it the
    // SDP advertises (and RTP binds) the first non-loopback interface.
    kv("net_interface", "127.0.0.1");
    kv("call_local_timeout", "120");
    kv("call_max_calls", "4");
    // aufile in 1.0.0 is a source only. A player must still open, else 1.0.0 fails to set the
    // decoder and records nothing; an aubridge device with no matching source is a null sink.
    // Received audio is recorded by the sndfile filter, which runs in the decode path.
    kv("audio_player", "aubridge,harness-play");
    kv("audio_alert", "aubridge,harness-alert");
    kv("audio_source", &format!("aufile,{play}"));
    kv("audio_level", "no");
    kv("ausrc_format", "s16");
    kv("auplay_format", "s16");
    kv("auenc_format", "s16");
    kv("audec_format", "s16");
    kv("audio_buffer", "20-160");
    kv("rtp_tos", "0");
    kv("rtcp_mux", "no");
    // baresip's default; on loopback there is no jitter, so this is a fixed ~100 ms delay.
    kv("jitter_buffer_delay", "5-10");
    kv("rtp_stats", "no");
    kv("module_path", &opts.module_path.display().to_string());
    for m in ["g711.so", "sndfile.so", "aubridge.so", "aufile.so"] {
        kv("module", m);
    }
    if opts.mediaenc.is_some() {
        kv("module", "srtp.so");
    }
    kv("module_tmp", "account.so");
    // menu provides the dial/hangup/accept/sndcode commands that ctrl_tcp relays.
    kv("module_app", "menu.so");
    kv("module_app", "ctrl_tcp.so");
    kv("ctrl_tcp_listen", &format!("127.0.0.1:{}", ports.ctrl));
    kv("snd_path", rec_dir);
    kv("statmode_default", "off");
    if let Some(ca) = opts.ca_file.as_ref().and_then(|p| p.to_str()) {
        kv("sip_cafile", ca);
    }
    if let Some(cert) = opts.certificate.as_ref().and_then(|p| p.to_str()) {
        kv("sip_certificate", cert);
    }
    c
}

pub fn aor(opts: &BaresipOptions) -> String {
    match &opts.register {
        // The registrar is the AOR's domain.
        Some((port, _)) => format!("sip:{}@127.0.0.1:{port}", opts.user),
        None => format!("sip:{}@127.0.0.1", opts.user),
    }
}

pub fn account_line(opts: &BaresipOptions) -> String {
    let transport = match opts.transport {
        Transport::Udp => "",
        Transport::Tcp => ";transport=tcp",
        Transport::Tls => ";transport=tls",
    };
    let answer = if opts.auto_answer { "auto" } else { "manual" };
    let mediaenc = opts
        .mediaenc
        .map(|m| format!(";mediaenc={m}"))
        .unwrap_or_default();
    let register = match &opts.register {
        Some((_, password)) => format!(";auth_pass={password};regint=60"),
        None => ";regint=0".to_string(),
    };
    format!(
        "<{}{transport}>{register};answermode={answer};audio_codecs={};ptime=20{mediaenc}\n",
        aor(opts),
        opts.codecs.join(",")
    )
}

pub fn write_dir(dir: &Path, opts: &BaresipOptions, ports: Ports, play: &str) -> io::Result<()> {
    let rec = dir.join("rec");
    std::fs::create_dir_all(&rec)?;
    let rec_s = check_config_path(&rec)?;
    std::fs::write(dir.join("config"), config_text(opts, ports, play, rec_s))?;
    std::fs::write(dir.join("accounts"), account_line(opts))?;
    // An existing empty file stops baresip from writing its example contacts template.
    std::fs::write(dir.join("contacts"), "")
}
