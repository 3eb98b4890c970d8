//! What `serve` and `call` share: the runtime that drives the agent, and the TLS / WebSocket
//! listeners and trust.

use parrot_tokio::{Agent, AgentConfig, MediaHandlerFactory, UasFactory};
use parrot_ua::{generate_self_signed, StreamKind, TlsClient, TlsServer};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Which adapter runs the SIP and media loop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Runtime {
    /// parrot-tokio: a current-thread tokio runtime on a thread of its own.
    #[default]
    Tokio,
    /// parrot-smol: a smol local executor on a thread of its own.
    Smol,
    /// parrot-mio: a blocking mio::Poll loop on a thread of its own, no async.
    Mio,
}

impl Runtime {
    /// Starts an agent on this runtime.
    pub fn start(
        self,
        cfg: AgentConfig,
        uas: Option<UasFactory>,
        media: Option<MediaHandlerFactory>,
    ) -> std::io::Result<Agent> {
        match self {
            Runtime::Tokio => parrot_tokio::start(cfg, uas, media),
            Runtime::Smol => parrot_smol::start(cfg, uas, media),
            Runtime::Mio => parrot_mio::start(cfg, uas, media),
        }
    }
}

/// Secure and WebSocket listeners of `parrot serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct StreamArgs {
    /// Listen for SIP over TLS here (`sips:`, `transport=tls`), e.g. 0.0.0.0:5061.
    #[arg(long, value_name = "ADDR")]
    tls_bind: Option<SocketAddr>,
    /// Listen for SIP over WebSocket (RFC 7118) here, e.g. 0.0.0.0:8080.
    #[arg(long, value_name = "ADDR")]
    ws_bind: Option<SocketAddr>,
    /// Listen for SIP over secure WebSocket here, e.g. 0.0.0.0:8443.
    #[arg(long, value_name = "ADDR")]
    wss_bind: Option<SocketAddr>,
    /// Certificate chain (PEM) for TLS and WSS; without it a self-signed certificate for the
    /// advertised address is generated at start-up.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl StreamArgs {
    /// Adds the listeners and the certificate to `cfg`. Returns a line to print when a
    /// certificate was generated.
    pub fn apply(&self, cfg: &mut AgentConfig) -> Result<Option<String>, String> {
        for (kind, addr) in [
            (StreamKind::Tls, self.tls_bind),
            (StreamKind::Ws, self.ws_bind),
            (StreamKind::Wss, self.wss_bind),
        ] {
            if let Some(a) = addr {
                cfg.streams.push((kind, a));
            }
        }
        if self.tls_bind.is_none() && self.wss_bind.is_none() {
            return Ok(None);
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            let server = TlsServer::from_pem_files(cert, key)
                .map_err(|e| format!("TLS certificate {}: {e}", cert.display()))?;
            cfg.tls_server = Some(server);
            return Ok(None);
        }
        let host = cfg
            .advertised_ip
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| {
                if cfg.bind.ip().is_unspecified() {
                    "127.0.0.1".into()
                } else {
                    cfg.bind.ip().to_string()
                }
            });
        let cert = generate_self_signed(&[host.as_str(), "localhost"])
            .map_err(|e| format!("cannot generate a certificate: {e}"))?;
        cfg.tls_server = Some(cert.server().map_err(|e| e.to_string())?);
        Ok(Some(format!(
            "TLS: using a generated self-signed certificate for {host} (give --tls-cert/--tls-key for a real one)"
        )))
    }
}

/// Trust for outgoing TLS: a PEM bundle of roots.
pub fn tls_client(ca: Option<&PathBuf>) -> Result<Option<TlsClient>, String> {
    ca.map(|p| {
        TlsClient::from_roots_pem_file(p).map_err(|e| format!("TLS roots {}: {e}", p.display()))
    })
    .transpose()
}
