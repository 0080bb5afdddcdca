//! The connector under bulwark's upstream HTTP client: resolves host names
//! with hickory-resolver, opens TCP with a deadline, and speaks TLS with
//! rustls (ring provider, web PKI roots plus an optional extra CA), offering
//! HTTP/2 and HTTP/1.1 by ALPN.
//!
//! Only `super` (the `UpstreamClient`) builds and calls this; it is the
//! `tower::Service<Uri>` that hyper-util's legacy `Client` asks for
//! connections. Its errors are [`ConnectError`], which the client finds again
//! in hyper-util's error chain to tell DNS, connect, TLS and timeout failures
//! apart.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;
use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Why a connection to an upstream could not be opened.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("DNS lookup of {host} failed: {reason}")]
    Dns { host: String, reason: String },
    #[error("TCP connect to {host} ({addrs}) failed: {reason}")]
    Connect {
        host: String,
        addrs: String,
        reason: String,
    },
    #[error("connecting to {host} did not finish within {after:?}")]
    Timeout { host: String, after: Duration },
    #[error("TLS handshake with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("cannot connect to {uri}: {reason}")]
    BadUri { uri: String, reason: String },
}

/// How host names are turned into addresses.
#[derive(Clone)]
pub(crate) enum Dns {
    /// hickory-resolver, with the system configuration or a given nameserver.
    Hickory(Arc<TokioResolver>),
    /// The operating system's resolver (getaddrinfo), used when the system
    /// DNS configuration cannot be read.
    Os,
}

impl Dns {
    /// A resolver that asks only `nameserver` (UDP and TCP on its port).
    pub(crate) fn with_nameserver(nameserver: SocketAddr) -> Result<Self, String> {
        let mut ns = NameServerConfig::udp_and_tcp(nameserver.ip());
        for conn in &mut ns.connections {
            conn.port = nameserver.port();
        }
        let config = ResolverConfig::from_parts(None, vec![], vec![ns]);
        let resolver = hickory_resolver::Resolver::builder_with_config(
            config,
            TokioRuntimeProvider::default(),
        )
        .build()
        .map_err(|e| format!("cannot build a resolver for nameserver {nameserver}: {e}"))?;
        Ok(Dns::Hickory(Arc::new(resolver)))
    }

    /// The system configuration (`/etc/resolv.conf`); if it cannot be read,
    /// the operating system's own resolver.
    pub(crate) fn system() -> Self {
        match TokioResolver::builder_tokio().and_then(|b| b.build()) {
            Ok(resolver) => Dns::Hickory(Arc::new(resolver)),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "cannot read the system DNS configuration; falling back to the OS resolver"
                );
                Dns::Os
            }
        }
    }

    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ConnectError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let dns_err = |reason: String| ConnectError::Dns {
            host: host.to_string(),
            reason,
        };
        let addrs: Vec<SocketAddr> = match self {
            Dns::Hickory(resolver) => resolver
                .lookup_ip(host)
                .await
                .map_err(|e| dns_err(e.to_string()))?
                .iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect(),
            Dns::Os => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| dns_err(e.to_string()))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(dns_err("no addresses".to_string()));
        }
        Ok(addrs)
    }
}

/// Builds the rustls client configuration: ring provider, web PKI roots, the
/// certificates in `extra_ca_pem` if given, ALPN `h2` then `http/1.1`.
pub(crate) fn tls_config(extra_ca_pem: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca_pem {
        let mut added = 0usize;
        for cert in CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read extra CA file {}: {e}", path.display()))?
        {
            let cert =
                cert.map_err(|e| format!("bad PEM in extra CA file {}: {e}", path.display()))?;
            roots.add(cert).map_err(|e| {
                format!(
                    "extra CA file {} holds a certificate rustls refuses as a root: {e}",
                    path.display()
                )
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(format!(
                "extra CA file {} holds no CERTIFICATE blocks",
                path.display()
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("rustls refuses the default protocol versions: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The `tower::Service<Uri>` that hyper-util's client calls for each new
/// connection.
#[derive(Clone)]
pub(crate) struct Connector {
    inner: Arc<ConnectorInner>,
}

struct ConnectorInner {
    dns: Dns,
    tls: TlsConnector,
    connect_timeout: Duration,
}

impl Connector {
    pub(crate) fn new(dns: Dns, tls: rustls::ClientConfig, connect_timeout: Duration) -> Self {
        Connector {
            inner: Arc::new(ConnectorInner {
                dns,
                tls: TlsConnector::from(Arc::new(tls)),
                connect_timeout,
            }),
        }
    }
}

impl tower::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let host = uri.host().unwrap_or_default().to_string();
            let after = inner.connect_timeout;
            match tokio::time::timeout(after, inner.connect(&uri)).await {
                Ok(result) => result.map(TokioIo::new),
                Err(_) => Err(ConnectError::Timeout { host, after }),
            }
        })
    }
}

impl ConnectorInner {
    async fn connect(&self, uri: &Uri) -> Result<Stream, ConnectError> {
        let bad = |reason: &str| ConnectError::BadUri {
            uri: uri.to_string(),
            reason: reason.to_string(),
        };
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(bad("scheme is neither http nor https")),
        };
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        // IPv6 literals come bracketed in URIs.
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });

        let addrs = self.dns.resolve(host, port).await?;
        let mut last_err = None;
        let mut tcp = None;
        for addr in &addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        let tcp = tcp.ok_or_else(|| ConnectError::Connect {
            host: host.to_string(),
            addrs: addrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            reason: last_err.map_or_else(|| "no address to try".to_string(), |e| e.to_string()),
        })?;
        // Small requests and responses: latency matters more than packing.
        let _ = tcp.set_nodelay(true);
        if !tls {
            return Ok(Stream::Plain(tcp));
        }
        let server_name =
            ServerName::try_from(host.to_string()).map_err(|e| ConnectError::Tls {
                host: host.to_string(),
                reason: format!("not a valid TLS server name: {e}"),
            })?;
        let stream = self
            .tls
            .connect(server_name, tcp)
            .await
            .map_err(|e| ConnectError::Tls {
                host: host.to_string(),
                reason: tls_reason(&e),
            })?;
        Ok(Stream::Tls(Box::new(stream)))
    }
}

fn tls_reason(e: &io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => tls.to_string(),
        None => e.to_string(),
    }
}

/// A connection to an upstream, plain or TLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Stream::Plain(tcp) => tcp.connected(),
            Stream::Tls(tls) => {
                let (tcp, session) = tls.get_ref();
                let connected = tcp.connected();
                if session.alpn_protocol() == Some(b"h2") {
                    connected.negotiated_h2()
                } else {
                    connected
                }
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
