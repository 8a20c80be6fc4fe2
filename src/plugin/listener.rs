//! The listening socket and the stream of (optionally TLS-wrapped) connections handed to tonic.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;

use super::handshake::{HostEnvironment, ListenAddress};

#[cfg_attr(unix, allow(dead_code))] // TCP serves Windows; unix sockets everywhere else.
pub enum Listener {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener, std::path::PathBuf),
}

impl Listener {
    /// go-plugin servers use a unix socket on every OS but Windows; so do we.
    pub async fn bind(host: &HostEnvironment) -> io::Result<Self> {
        #[cfg(unix)]
        {
            let dir = host.unix_socket_dir.clone().unwrap_or_else(std::env::temp_dir);
            Self::bind_unix(&dir)
        }
        #[cfg(not(unix))]
        {
            Self::bind_tcp(host.min_port, host.max_port).await
        }
    }

    pub async fn bind_default() -> io::Result<Self> {
        #[cfg(unix)]
        {
            Self::bind_unix(&std::env::temp_dir())
        }
        #[cfg(not(unix))]
        {
            Self::bind_tcp(0, 0).await
        }
    }

    #[cfg(unix)]
    fn bind_unix(dir: &std::path::Path) -> io::Result<Self> {
        // A fresh, unpredictable name in the directory; the socket is removed on shutdown.
        let mut attempt = 0;
        loop {
            let nonce: u64 = rand_u64();
            let path = dir.join(format!("plugin{}", nonce % 10_000_000_000));
            match tokio::net::UnixListener::bind(&path) {
                Ok(listener) => return Ok(Listener::Unix(listener, path)),
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempt < 10 => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    #[cfg_attr(unix, allow(dead_code))]
    /// Binds 127.0.0.1 on the first free port of `min..=max` (any port when both are 0).
    pub async fn bind_tcp(min: u16, max: u16) -> io::Result<Self> {
        if min == 0 && max == 0 {
            return Ok(Listener::Tcp(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?));
        }
        let mut last_error = None;
        for port in min..=max.max(min) {
            match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
                Ok(listener) => return Ok(Listener::Tcp(listener)),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| {
            io::Error::new(io::ErrorKind::AddrNotAvailable, format!("no free port in {min}..={max}"))
        }))
    }

    pub fn address(&self) -> ListenAddress {
        match self {
            Listener::Tcp(l) => ListenAddress::Tcp(
                l.local_addr().unwrap_or_else(|_| SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
            ),
            #[cfg(unix)]
            Listener::Unix(_, path) => ListenAddress::Unix(path.clone()),
        }
    }

    async fn accept(&self) -> io::Result<Box<dyn Io>> {
        match self {
            Listener::Tcp(l) => {
                let (stream, _) = l.accept().await?;
                stream.set_nodelay(true)?;
                Ok(Box::new(stream))
            }
            #[cfg(unix)]
            Listener::Unix(l, _) => Ok(Box::new(l.accept().await?.0)),
        }
    }

    /// Accepts connections until shutdown. TLS handshakes run concurrently so one slow or
    /// hostile client cannot hold up the next; failed handshakes are logged and dropped.
    pub fn incoming(
        self,
        tls: Option<Arc<rustls::ServerConfig>>,
        shutdown: CancellationToken,
    ) -> ReceiverStream<io::Result<Connection>> {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        tokio::spawn(async move {
            loop {
                let io = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    accepted = self.accept() => match accepted {
                        Ok(io) => io,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            continue;
                        }
                    },
                };
                let tx = tx.clone();
                match acceptor.clone() {
                    None => {
                        let _ = tx.send(Ok(Connection(io))).await;
                    }
                    Some(acceptor) => {
                        tokio::spawn(async move {
                            match acceptor.accept(io).await {
                                Ok(stream) => {
                                    let _ = tx.send(Ok(Connection(Box::new(stream)))).await;
                                }
                                Err(e) => tracing::warn!(error = %e, "rejected a TLS connection"),
                            }
                        });
                    }
                }
            }
        });
        ReceiverStream::new(rx)
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    hasher.finish()
}

pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// One accepted connection, plain or TLS, as tonic wants it.
pub struct Connection(Box<dyn Io>);

impl Connected for Connection {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Connection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_inside_the_requested_port_range() {
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let port = taken.local_addr().unwrap().port();
        // The first port is busy, so the listener must move on to the next one in range.
        let Ok(listener) = Listener::bind_tcp(port, port.saturating_add(20)).await else {
            panic!("no port in range");
        };
        let ListenAddress::Tcp(addr) = listener.address() else { panic!("not tcp") };
        assert_eq!(addr.ip(), Ipv4Addr::LOCALHOST);
        assert!(addr.port() > port && addr.port() <= port + 20);
    }
}
