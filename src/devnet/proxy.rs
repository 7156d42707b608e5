//! A loopback HTTP proxy in front of a homeserver that a test can break: what a flaky
//! network, or a reverse proxy whose homeserver is down, looks like to the bot.
//!
//! Owns: forwarding raw HTTP/1.1 between one client and one upstream on 127.0.0.1.
//! Every connection carries one request (the proxy adds `Connection: close`), so a
//! change of [`Mode`] applies from the client's next request on. Only message sends
//! (`PUT …/send/…`) are ever broken: sync, login and key requests always pass.
//! Must not touch: anything but loopback.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::synapse::DevnetError;

/// What happens to message sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Forwarded.
    Pass = 0,
    /// The connection is closed before any response: a network loss.
    Drop = 1,
    /// Answered `502 Bad Gateway`: a server error.
    BadGateway = 2,
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct Proxy {
    /// `http://127.0.0.1:<port>`, to use as the homeserver URL.
    pub url: String,
    mode: Arc<AtomicU8>,
    hold: watch::Sender<Option<String>>,
    held: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream`
    /// (`http://127.0.0.1:<port>`).
    pub async fn start(upstream: &str) -> Result<Proxy, DevnetError> {
        let e = |x: &dyn std::fmt::Display| DevnetError(format!("proxy: {x}"));
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .map_err(|x| e(&x))?;
        if !upstream.ip().is_loopback() {
            return Err(DevnetError("proxy: upstream must be on loopback".into()));
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|x| e(&x))?;
        let url = format!("http://{}", listener.local_addr().map_err(|x| e(&x))?);
        let mode = Arc::new(AtomicU8::new(Mode::Pass as u8));
        let (hold, _) = watch::channel(None::<String>);
        let held = Arc::new(AtomicUsize::new(0));
        let (m, h, n) = (Arc::clone(&mode), hold.clone(), Arc::clone(&held));
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (m, h, n) = (Arc::clone(&m), h.subscribe(), Arc::clone(&n));
                tokio::spawn(async move {
                    let _ = serve(client, upstream, &m, h, &n).await;
                });
            }
        });
        Ok(Proxy {
            url,
            mode,
            hold,
            held,
            task,
        })
    }

    /// From now on, message sends into `room` (a room ID) get no answer until
    /// [`Proxy::release`]: what a room whose sends hang looks like. Other rooms pass.
    pub fn hold_room(&self, room: &str) {
        self.hold.send_replace(Some(room.to_owned()));
    }

    /// Forwards the held sends, and every later one.
    pub fn release(&self) {
        self.hold.send_replace(None);
    }

    /// How many sends are held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// From the next request on, message sends are handled so.
    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    mode: &AtomicU8,
    mut hold: watch::Receiver<Option<String>>,
    held: &AtomicUsize,
) -> std::io::Result<()> {
    // The request head, and whatever of the body came with it.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let first = head.lines().next().unwrap_or_default();
    if first.starts_with("PUT ") && first.contains("/send/") {
        match mode.load(Ordering::SeqCst) {
            m if m == Mode::Drop as u8 => return Ok(()),
            m if m == Mode::BadGateway as u8 => {
                let body = r#"{"errcode":"M_UNKNOWN","error":"Bad Gateway"}"#;
                let resp = format!(
                    "HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                client.write_all(resp.as_bytes()).await?;
                return client.shutdown().await;
            }
            _ => {}
        }
        let path = percent_decoded(first);
        let holds = |h: &Option<String>| h.as_deref().is_some_and(|r| path.contains(r));
        if holds(&hold.borrow()) {
            held.fetch_add(1, Ordering::SeqCst);
            let released = hold.wait_for(|h| !holds(h)).await.is_ok();
            held.fetch_sub(1, Ordering::SeqCst);
            if !released {
                return Ok(());
            }
        }
    }
    let mut rewritten = String::with_capacity(head.len() + 24);
    for line in head.trim_end_matches("\r\n").split("\r\n") {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            rewritten.push_str(line);
            rewritten.push_str("\r\n");
        }
    }
    rewritten.push_str("Connection: close\r\n\r\n");
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(rewritten.as_bytes()).await?;
    up.write_all(&buf[head_end..]).await?;
    tokio::io::copy_bidirectional(&mut client, &mut up).await?;
    Ok(())
}

/// `text` with its `%XX` escapes decoded (invalid ones kept as they are).
fn percent_decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn room_ids_in_request_paths_are_found_however_they_are_escaped() {
        let line =
            "PUT /_matrix/client/v3/rooms/!abc%3Alocalhost%3A8008/send/m.room.message/t1 HTTP/1.1";
        assert!(super::percent_decoded(line).contains("!abc:localhost:8008"));
        assert!(super::percent_decoded("%21x%3ay %zz %4").contains("!x:y %zz %4"));
    }
}
