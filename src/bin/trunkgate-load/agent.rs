//! The load tool's echo agent: a WebSocket server that sends the audio it receives back
//! (raw: binary PCM16; twilio: the media payload re-sent as an outbound media message): frame
//! by frame as received, or chunked or in 2 s bursts ([`crate::agent_echo`]), each frame
//! stamped on arrival and departure for the round trip's direction split ([`crate::marks`]).
//!
//! One thread, level-triggered epoll polled every millisecond, plain non-blocking sockets and its own RFC 6455 framing
//! (server side: masked frames in, unmasked frames out): per readable connection one `read`,
//! every complete frame in it answered, the answers written with one `write`. A task per
//! connection cost the load tool as much CPU as the gateway it measures; this leaves the
//! machine's cores to the gateway. Fragmented messages are not needed by the gateway's
//! dialects and close the connection.
//!
//! In outbound mode it also notes, per call, when the gateway's agent leg connected and when
//! its start message arrived ([`crate::timeline`]): the call is named by the last digits of
//! the WebSocket path the load tool put in `websocket_url` (`/agent/000000042`).

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::agent_echo::{twilio_audio, twilio_media, Reply};
use crate::marks::{self, Audio};
use crate::timeline::{self, Event, Timeline};

#[derive(Default)]
pub struct AgentStats {
    pub connections: AtomicU64,
    pub frames: AtomicU64,
    /// Outbound mode: where connections and start messages are recorded per call.
    pub calls: Option<Arc<Timeline>>,
}

const LISTENER: u64 = u64::MAX;
/// A handshake or a backlog of frames larger than this closes the connection.
const MAX_BUFFERED: usize = 1 << 20;

/// Binds the agent on `addr`'s IP (port 0) and serves until the process ends.
pub fn serve(
    addr: SocketAddr,
    dialect: &str,
    reply: Reply,
    stats: Arc<AgentStats>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(SocketAddr::new(addr.ip(), 0))?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    epoll.add(&listener, EpollEvent::new(EpollFlags::EPOLLIN, LISTENER))?;
    let twilio = dialect.eq_ignore_ascii_case("twilio");
    std::thread::Builder::new()
        .name("load-agent".into())
        .spawn(move || run(epoll, listener, twilio, reply, stats))?;
    Ok(local)
}

struct Conn {
    stream: TcpStream,
    open: bool,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    stream_sid: String,
    /// The call this connection belongs to (outbound mode), until its start message is seen.
    call: Option<usize>,
    /// Audio received and not yet sent back (chunked or burst replies).
    held: Vec<u8>,
}

fn run(epoll: Epoll, listener: TcpListener, twilio: bool, reply: Reply, stats: Arc<AgentStats>) {
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut next_id: u64 = 0;
    let mut events = vec![EpollEvent::empty(); 256];
    let mut chunk = vec![0u8; 64 * 1024];
    let start = Instant::now();
    let mut tick: u64 = 0;
    loop {
        // Polled once per millisecond rather than woken per frame: a wake-up per frame cost
        // this thread a context switch, and the gateway (whose sends did the waking) the
        // wake-up itself. Answers leave up to 1 ms later (0.5 ms on average).
        let n = epoll.wait(&mut events, EpollTimeout::ZERO).unwrap_or(0);
        for ev in &events[..n] {
            let id = ev.data();
            if id == LISTENER {
                while let Ok((stream, _)) = listener.accept() {
                    let _ = stream.set_nodelay(true);
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
                    if epoll
                        .add(stream.as_fd(), EpollEvent::new(flags, next_id))
                        .is_ok()
                    {
                        conns.insert(
                            next_id,
                            Conn {
                                stream,
                                open: false,
                                inbuf: Vec::new(),
                                outbuf: Vec::new(),
                                stream_sid: String::new(),
                                call: None,
                                held: Vec::new(),
                            },
                        );
                        next_id += 1;
                    }
                }
                continue;
            }
            let Some(conn) = conns.get_mut(&id) else {
                continue;
            };
            let keep = serve_readable(conn, &mut chunk, twilio, reply, &stats);
            if !keep {
                if let Some(c) = conns.remove(&id) {
                    let _ = epoll.delete(c.stream.as_fd());
                }
            }
        }
        if n == events.len() {
            continue; // more ready than one batch: no pause
        }
        tick = tick.max(start.elapsed().as_millis() as u64) + 1;
        let next = start + Duration::from_millis(tick);
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
}

/// One read, every complete frame answered, one write. False: close the connection.
fn serve_readable(
    conn: &mut Conn,
    chunk: &mut [u8],
    twilio: bool,
    reply: Reply,
    stats: &AgentStats,
) -> bool {
    let n = match conn.stream.read(chunk) {
        Ok(0) => return false,
        Ok(n) => n,
        Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
            return true
        }
        Err(_) => return false,
    };
    conn.inbuf.extend_from_slice(&chunk[..n]);
    if conn.inbuf.len() > MAX_BUFFERED {
        return false;
    }
    if !conn.open {
        let Some(end) = find(&conn.inbuf, b"\r\n\r\n") else {
            return true;
        };
        let Some(reply) = handshake(&conn.inbuf[..end]) else {
            return false;
        };
        if let Some(t) = &stats.calls {
            conn.call = request_path(&conn.inbuf[..end]).and_then(timeline::index_of);
            if let Some(n) = conn.call {
                t.mark(n, Event::AgentConnected);
            }
        }
        conn.inbuf.drain(..end + 4);
        conn.outbuf.extend_from_slice(reply.as_bytes());
        conn.open = true;
        stats.connections.fetch_add(1, Ordering::Relaxed);
    }
    let mut used = 0;
    let mut keep = true;
    while let Some((opcode, payload, len)) = next_frame(&conn.inbuf[used..]) {
        used += len;
        match opcode {
            // Text (twilio) or binary (raw).
            1 | 2 => {
                if opcode == 1 {
                    note_start(conn, &payload, stats);
                }
                let audio = if opcode == 2 && !twilio {
                    Some(payload)
                } else if opcode == 1 && twilio {
                    std::str::from_utf8(&payload)
                        .ok()
                        .and_then(|t| twilio_audio(t, &mut conn.stream_sid))
                } else {
                    None
                };
                if let Some(audio) = audio {
                    echo(conn, audio, twilio, reply, stats);
                }
            }
            // Ping → pong.
            9 => write_frame(&mut conn.outbuf, 10, &payload),
            10 => {}
            // Close (answered), or a fragment this agent does not reassemble.
            _ => {
                if opcode == 8 {
                    write_frame(&mut conn.outbuf, 8, &payload[..payload.len().min(2)]);
                }
                keep = false;
                break;
            }
        }
    }
    conn.inbuf.drain(..used);
    if conn.held.len() > MAX_BUFFERED {
        return false;
    }
    if !conn.outbuf.is_empty() {
        match conn.stream.write(&conn.outbuf) {
            Ok(k) => {
                conn.outbuf.drain(..k);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
        // What the socket did not take goes with the next write (the gateway reads steadily).
        if conn.outbuf.len() > MAX_BUFFERED {
            return false;
        }
    }
    keep
}

/// The 101 answer to an upgrade request, if it is one.
fn handshake(head: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(head).ok()?;
    let key = text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_string())
    })?;
    Some(format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    ))
}

/// The path of an HTTP request head (`GET /agent/000000042 HTTP/1.1`).
fn request_path(head: &[u8]) -> Option<&str> {
    let line = head.split(|&b| b == b'\r').next()?;
    std::str::from_utf8(line).ok()?.split(' ').nth(1)
}

/// Outbound mode: the first start message of a call's connection is recorded with the call id
/// it names (twilio `start.callSid`, raw `call_id`). Media frames are skipped unparsed.
fn note_start(conn: &mut Conn, text: &[u8], stats: &AgentStats) {
    let (Some(n), Some(t)) = (conn.call, &stats.calls) else {
        return;
    };
    if text.len() > 64 * 1024 || find(text, b"\"media\"").is_some() {
        return;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(text) else {
        return;
    };
    let id = if v.get("event").and_then(|e| e.as_str()) == Some("start") {
        v.pointer("/start/callSid")
    } else if v.get("type").and_then(|e| e.as_str()) == Some("start") {
        v.get("call_id")
    } else {
        return;
    };
    t.mark(n, Event::AgentStart);
    t.set_agent_call_id(n, id.and_then(|i| i.as_str()).unwrap_or(""));
    conn.call = None;
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One complete frame at the start of `buf`: (opcode, unmasked payload, bytes used).
/// Fragments (FIN clear or continuation) come back as opcode 0.
fn next_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let b0 = *buf.first()?;
    let b1 = *buf.get(1)?;
    let fin = b0 & 0x80 != 0;
    let opcode = if fin { b0 & 0x0f } else { 0 };
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => {
            let b: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(b), 10)
        }
        l => (u64::from(l), 2),
    };
    let mask: Option<[u8; 4]> = if masked {
        let m = buf.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(m)
    } else {
        None
    };
    let len = usize::try_from(len).ok()?;
    let end = at.checked_add(len)?;
    let mut payload = buf.get(at..end)?.to_vec();
    if let Some(m) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= m[i % 4];
        }
    }
    Some((opcode, payload, end))
}

fn write_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= 0xffff => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// Received `audio` (stamped now) joins what the connection holds; the messages `reply` says
/// are due go out (stamped now).
fn echo(conn: &mut Conn, mut audio: Vec<u8>, twilio: bool, reply: Reply, stats: &AgentStats) {
    let enc = if twilio { Audio::Ulaw } else { Audio::Pcm16 };
    let now = marks::us(Instant::now());
    enc.stamp_in(&mut audio, now);
    if conn.held.is_empty() {
        conn.held = audio;
    } else {
        conn.held.extend_from_slice(&audio);
    }
    for mut msg in reply.take(&mut conn.held, enc) {
        enc.stamp_out(&mut msg, now);
        stats.frames.fetch_add(1, Ordering::Relaxed);
        if twilio {
            write_frame(
                &mut conn.outbuf,
                1,
                twilio_media(&conn.stream_sid, &msg).as_bytes(),
            );
        } else {
            write_frame(&mut conn.outbuf, 2, &msg);
        }
    }
}

#[cfg(test)]
#[path = "agent_tests.rs"]
mod tests;
