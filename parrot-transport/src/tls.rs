//! TLS configurations for SIP over TLS (RFC 3261 §26.2.1, RFC 5630) and WSS (RFC 7118 §3), on
//! rustls with the `ring` provider.
//!
//! The configurations are built once and shared (`Arc`) by every connection; the per-connection
//! state is a `rustls::Connection` inside [`crate::StreamLayer`]. Reading PEM files is the only
//! file IO in the crate, and it happens here, at configuration time, never per connection.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::error::ConfigError;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(ConfigError::Io)
}

fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConfigError::Pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(ConfigError::Pem("no CERTIFICATE section".into()));
    }
    Ok(certs)
}

/// The server side's TLS configuration: a certificate chain and its private key.
#[derive(Debug, Clone)]
pub struct TlsServer(pub Arc<ServerConfig>);

impl TlsServer {
    /// From a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<TlsServer, ConfigError> {
        let certs = certs_from_pem(cert_chain_pem)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| ConfigError::Pem(format!("private key: {e}")))?;
        TlsServer::from_der(certs, key)
    }

    /// From PEM files, as given to `parrot serve --tls-cert FILE --tls-key FILE`.
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<TlsServer, ConfigError> {
        TlsServer::from_pem(&read(cert_chain.as_ref())?, &read(key.as_ref())?)
    }

    /// From DER: the chain (leaf first) and the key. No client certificates are asked for.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<TlsServer, ConfigError> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Ok(TlsServer(Arc::new(config)))
    }
}

/// The client side's TLS configuration: which server certificates to trust.
#[derive(Debug, Clone)]
pub struct TlsClient(pub Arc<ClientConfig>);

impl TlsClient {
    /// Trusts the CA certificates of a PEM bundle (RFC 5280 path validation, with the server
    /// name checked against the certificate, RFC 6125).
    pub fn from_roots_pem(pem: &[u8]) -> Result<TlsClient, ConfigError> {
        let mut roots = RootCertStore::empty();
        for cert in certs_from_pem(pem)? {
            roots.add(cert)?;
        }
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsClient(Arc::new(config)))
    }

    /// Trusts the CA certificates of a PEM file.
    pub fn from_roots_pem_file(path: impl AsRef<Path>) -> Result<TlsClient, ConfigError> {
        TlsClient::from_roots_pem(&read(path.as_ref())?)
    }

    /// Accepts exactly one server certificate, byte for byte, whatever its name, issuer or
    /// dates; the handshake signature is still verified against its key. For tests and for a
    /// pinned self-signed peer; never a way to trust "anything".
    pub fn pinned(cert: CertificateDer<'static>) -> Result<TlsClient, ConfigError> {
        let provider = provider();
        let verifier = PinnedCert {
            cert,
            algs: provider.signature_verification_algorithms,
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(TlsClient(Arc::new(config)))
    }
}

/// Accepts one certificate exactly; see [`TlsClient::pinned`].
#[derive(Debug)]
struct PinnedCert {
    cert: CertificateDer<'static>,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// A generated self-signed certificate and its key, in PEM and DER.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key (PKCS#8), PEM.
    pub key_pem: String,
    /// The certificate, DER.
    pub cert_der: CertificateDer<'static>,
}

impl SelfSigned {
    /// A server configuration presenting this certificate.
    pub fn server(&self) -> Result<TlsServer, ConfigError> {
        TlsServer::from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes())
    }

    /// A client configuration that accepts exactly this certificate ([`TlsClient::pinned`]).
    pub fn pinned_client(&self) -> Result<TlsClient, ConfigError> {
        TlsClient::pinned(self.cert_der.clone())
    }

    /// A client configuration with this certificate as its only trust root: the server name is
    /// checked against the certificate's names, as a real client would.
    pub fn trusting_client(&self) -> Result<TlsClient, ConfigError> {
        TlsClient::from_roots_pem(self.cert_pem.as_bytes())
    }
}

/// Generates a self-signed certificate (ECDSA P-256) for `names`: DNS names, or IP addresses
/// written as such (`"127.0.0.1"`, `"::1"`), which become iPAddress subject alternative names.
///
/// The key comes from the OS random source through `ring`: this is configuration, not protocol
/// state, and a predictable key would be a weakness, not a reproducibility gain.
pub fn generate_self_signed(names: &[&str]) -> Result<SelfSigned, ConfigError> {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| ConfigError::Generate(e.to_string()))?;
    Ok(SelfSigned {
        cert_pem: ck.cert.pem(),
        key_pem: ck.key_pair.serialize_pem(),
        cert_der: ck.cert.der().clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificates_load() {
        let ss = generate_self_signed(&["localhost", "127.0.0.1"]).unwrap();
        assert!(ss.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        ss.server().unwrap();
        ss.trusting_client().unwrap();
        ss.pinned_client().unwrap();
    }

    #[test]
    fn bad_pem_is_an_error() {
        assert!(matches!(
            TlsServer::from_pem(b"nothing here", b""),
            Err(ConfigError::Pem(_))
        ));
        let ss = generate_self_signed(&["localhost"]).unwrap();
        assert!(matches!(
            TlsServer::from_pem(ss.cert_pem.as_bytes(), b"junk"),
            Err(ConfigError::Pem(_))
        ));
        assert!(matches!(
            TlsClient::from_roots_pem_file("/nonexistent/roots.pem"),
            Err(ConfigError::Io(_))
        ));
    }
}
