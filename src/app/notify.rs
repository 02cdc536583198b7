//! systemd readiness notification (sd_notify protocol): a datagram to `$NOTIFY_SOCKET`.
//! A no-op outside systemd. Abstract sockets (`@name`) are supported.

use std::os::unix::net::UnixDatagram;

/// Sends `state` (e.g. "READY=1", "RELOADING=1", "STOPPING=1") to systemd, if it listens.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let result = if let Some(name) = path.strip_prefix('@') {
        abstract_send(&sock, name, state)
    } else {
        sock.send_to(state.as_bytes(), &path).map(|_| ())
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

fn abstract_send(sock: &UnixDatagram, name: &str, state: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    sock.send_to_addr(state.as_bytes(), &addr).map(|_| ())
}
