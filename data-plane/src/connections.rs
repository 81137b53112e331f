//! What a connection may hold before and while it speaks HTTP: a place under the
//! process-wide and per-address connection caps, a first byte that opens a TLS
//! handshake (plain HTTP is answered with a short 400 and closed, as nginx does), and
//! an idle timeout that closes a connection on which nothing moved for too long.
//!
//! The acceptor runs before rustls (`RustlsAcceptor::acceptor`), so a refused or
//! plaintext connection costs no handshake. The TLS handshake then has its own timeout
//! and the first request another (see `Server::run`).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// The bounds on connections; set by `sluice serve`'s flags.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Open connections in the whole process.
    pub max: usize,
    /// Open connections from one client address.
    pub per_address: usize,
    /// A connection on which nothing was read or written for this long is closed.
    pub idle: Duration,
    /// How long the TLS handshake (and the first byte before it) may take.
    pub handshake: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max: 4_096,
            per_address: 1_024,
            idle: Duration::from_secs(60),
            handshake: Duration::from_secs(10),
        }
    }
}

/// The answer to a plaintext HTTP request on the TLS port.
const PLAINTEXT_ANSWER: &str = "HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Connection: close\r\n\
Content-Length: 54\r\n\
\r\n\
This port speaks HTTPS only: use https:// in the URL.\n";

/// The first byte of a TLS record carrying a handshake message.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Counts open connections, in all and per address.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// The acceptor that admits a connection under the caps and hands rustls a stream that
/// times out when idle.
#[derive(Clone)]
pub struct Admission {
    limits: ConnectionLimits,
    counts: Arc<Mutex<Counts>>,
}

impl Admission {
    pub fn new(limits: ConnectionLimits) -> Admission {
        Admission {
            limits,
            counts: Default::default(),
        }
    }

    /// Takes a place for `address`, or says which cap is full.
    fn take(&self, address: IpAddr) -> Result<Place, &'static str> {
        let mut counts = self.counts.lock().expect("connection counts");
        if counts.total >= self.limits.max {
            return Err("process");
        }
        let mine = counts.by_address.entry(address).or_default();
        if *mine >= self.limits.per_address {
            return Err("address");
        }
        *mine += 1;
        counts.total += 1;
        metrics::gauge!("sluice_connections_open").set(counts.total as f64);
        Ok(Place {
            counts: self.counts.clone(),
            address,
        })
    }

    /// Admits `stream` or refuses it (an error closes it). A refused connection is
    /// closed at once rather than left in the listen queue, where it would hold up the
    /// connections behind it.
    async fn admit(&self, stream: TcpStream) -> io::Result<Guarded> {
        let peer = stream.peer_addr()?;
        let place = self.take(peer.ip()).map_err(|cap| {
            metrics::counter!("sluice_connections_refused_total", "reason" => cap).increment(1);
            tracing::debug!(%peer, cap, "connection refused: connection limit reached");
            io::Error::other("connection limit reached")
        })?;
        let mut stream = stream;
        let mut first = [0u8; 1];
        let peeked = tokio::time::timeout(self.limits.handshake, stream.peek(&mut first)).await;
        match peeked {
            Ok(Ok(1)) if first[0] == TLS_HANDSHAKE_RECORD => {}
            Ok(Ok(1)) if first[0].is_ascii_uppercase() => {
                refuse_plaintext(&mut stream, peer).await;
                return Err(io::Error::other("plaintext HTTP on the TLS port"));
            }
            Ok(Ok(_)) => return Err(io::Error::other("not a TLS handshake")),
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                metrics::counter!("sluice_connections_timed_out_total", "phase" => "handshake")
                    .increment(1);
                return Err(io::Error::new(io::ErrorKind::TimedOut, "no handshake"));
            }
        }
        Ok(Guarded::new(stream, self.limits.idle, place))
    }
}

/// Writes the plaintext answer (without waiting long for a client that does not read)
/// and closes.
async fn refuse_plaintext(stream: &mut TcpStream, peer: SocketAddr) {
    metrics::counter!("sluice_connections_refused_total", "reason" => "plaintext").increment(1);
    tracing::debug!(%peer, "plaintext HTTP on the TLS port answered 400");
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        stream.write_all(PLAINTEXT_ANSWER.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

impl<S: Send + 'static> axum_server::accept::Accept<TcpStream, S> for Admission {
    type Stream = Guarded;
    type Service = S;
    type Future =
        Pin<Box<dyn std::future::Future<Output = io::Result<(Guarded, S)>> + Send + 'static>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let admission = self.clone();
        Box::pin(async move {
            let guarded = admission.admit(stream).await?;
            Ok((guarded, service))
        })
    }
}

/// A connection's place under the caps, given back when the connection is dropped.
struct Place {
    counts: Arc<Mutex<Counts>>,
    address: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().expect("connection counts");
        counts.total -= 1;
        if let Some(mine) = counts.by_address.get_mut(&self.address) {
            *mine -= 1;
            if *mine == 0 {
                counts.by_address.remove(&self.address);
            }
        }
        metrics::gauge!("sluice_connections_open").set(counts.total as f64);
    }
}

/// A TCP stream that holds its place under the caps and fails its reads once nothing
/// has been read or written for the idle timeout (HTTP/1 and HTTP/2 both poll reads
/// while a connection is open, so the timer is always watched).
pub struct Guarded {
    inner: TcpStream,
    idle: Duration,
    last_activity: Instant,
    timer: Pin<Box<Sleep>>,
    _place: Place,
}

impl Guarded {
    fn new(inner: TcpStream, idle: Duration, place: Place) -> Guarded {
        Guarded {
            inner,
            idle,
            last_activity: Instant::now(),
            timer: Box::pin(tokio::time::sleep(idle)),
            _place: place,
        }
    }

    /// Whether the idle timeout has passed; re-arms the timer when activity moved the
    /// deadline since it was set (the timer is not reset on every read and write).
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            let deadline = self.last_activity + self.idle;
            if Instant::now() >= deadline {
                return true;
            }
            self.timer
                .as_mut()
                .reset(tokio::time::Instant::from_std(deadline));
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.last_activity = Instant::now();
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                if self.idle_expired(cx) {
                    metrics::counter!("sluice_connections_timed_out_total", "phase" => "idle")
                        .increment(1);
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection idle",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.last_activity = Instant::now();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.last_activity = Instant::now();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_and_given_back() {
        let admission = Admission::new(ConnectionLimits {
            max: 3,
            per_address: 2,
            ..ConnectionLimits::default()
        });
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = admission.take(a).unwrap();
        let _second = admission.take(a).unwrap();
        assert_eq!(admission.take(a).err(), Some("address"));
        let _third = admission.take(b).unwrap();
        assert_eq!(admission.take(b).err(), Some("process"));
        drop(first);
        assert!(admission.take(a).is_ok());
        assert!(admission.counts.lock().unwrap().by_address.len() <= 2);
    }

    #[test]
    fn the_plaintext_answer_is_well_formed() {
        let (head, body) = PLAINTEXT_ANSWER.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(body.len(), length);
    }
}
