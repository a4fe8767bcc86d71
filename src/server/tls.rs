//! The rustls side of `--web.config.file`'s `tls_server_config`: versions,
//! the certificate and key, and the client certificate checks Go's
//! `tls.ClientAuthType` names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio_rustls::rustls::{
    self, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    crypto::{CryptoProvider, WebPkiSupportedAlgorithms},
    server::WebPkiClientVerifier,
    server::danger::{ClientCertVerified, ClientCertVerifier},
};

/// A `tls_server_config` that cannot be served. Names the file and the key,
/// never a key's content.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "tls_server_config.client_auth_type {0:?} is not one of NoClientCert, \
         RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, \
         RequireAndVerifyClientCert"
    )]
    ClientAuthType(String),
    #[error("tls_server_config.{field} {value} is not supported: TLS12 and TLS13 are")]
    OldVersion { field: &'static str, value: String },
    #[error("tls_server_config.{field} {value:?} is not TLS12 or TLS13")]
    Version { field: &'static str, value: String },
    #[error("tls_server_config: {what} {}: {source}", .path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tls_server_config: {what} {}: {source}", .path.display())]
    Pem {
        what: &'static str,
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("tls_server_config: {what} {}: no certificate in it", .path.display())]
    NoCertificate { what: &'static str, path: PathBuf },
    #[error("tls_server_config: key_file {}: no private key in it ({source})", .path.display())]
    NoKey {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("tls_server_config: client_ca_file {}: {source}", .path.display())]
    CaCertificate {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("tls_server_config: client_ca_file is missing")]
    NoCaFile,
    #[error("tls_server_config: client_ca_file: {0}")]
    Verifier(rustls::server::VerifierBuilderError),
    #[error("tls_server_config: {0}")]
    Versions(rustls::Error),
    #[error("tls_server_config: cert_file and key_file: {0}")]
    CertAndKey(rustls::Error),
}

/// exporter-toolkit's `client_auth_type` values (Go's `tls.ClientAuthType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    pub(super) fn parse(s: &str) -> Result<Self, TlsError> {
        Ok(match s {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            "RequireAnyClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            other => return Err(TlsError::ClientAuthType(other.to_string())),
        })
    }

    pub(super) fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

pub(super) fn parse_version(field: &'static str, s: &str) -> Result<u8, TlsError> {
    match s {
        "TLS12" => Ok(12),
        "TLS13" => Ok(13),
        "TLS10" | "TLS11" => Err(TlsError::OldVersion {
            field,
            value: s.to_string(),
        }),
        other => Err(TlsError::Version {
            field,
            value: other.to_string(),
        }),
    }
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn provider() -> Arc<CryptoProvider> {
    // The same rustls and aws-lc-rs provider that reqwest uses; passed
    // explicitly so nothing depends on a process-wide default.
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

pub(super) fn server_config(
    cert_path: &Path,
    key_path: &Path,
    ca_path: Option<&Path>,
    client_auth: ClientAuth,
    min: u8,
    max: u8,
) -> Result<ServerConfig, TlsError> {
    let cert_pem = read_file("cert_file", cert_path)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            what: "cert_file",
            path: cert_path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            what: "cert_file",
            path: cert_path.to_path_buf(),
        });
    }
    let key_pem = read_file("key_file", key_path)?;
    // The error names the file, never its content.
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|source| TlsError::NoKey {
        path: key_path.to_path_buf(),
        source,
    })?;

    let provider = provider();
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if max >= 13 {
        versions.push(&rustls::version::TLS13);
    }
    if min <= 12 {
        versions.push(&rustls::version::TLS12);
    }
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(TlsError::Versions)?;

    let verifier: Option<Arc<dyn ClientCertVerifier>> = match client_auth {
        ClientAuth::NoClientCert => None,
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => {
            Some(Arc::new(AnyClientCert {
                mandatory: client_auth == ClientAuth::RequireAnyClientCert,
                algorithms: provider.signature_verification_algorithms,
            }))
        }
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let ca_path = ca_path.ok_or(TlsError::NoCaFile)?;
            let ca_pem = read_file("client_ca_file", ca_path)?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&ca_pem) {
                let cert = cert.map_err(|source| TlsError::Pem {
                    what: "client_ca_file",
                    path: ca_path.to_path_buf(),
                    source,
                })?;
                roots.add(cert).map_err(|source| TlsError::CaCertificate {
                    path: ca_path.to_path_buf(),
                    source,
                })?;
            }
            if roots.is_empty() {
                return Err(TlsError::NoCertificate {
                    what: "client_ca_file",
                    path: ca_path.to_path_buf(),
                });
            }
            let b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let b = if client_auth == ClientAuth::VerifyClientCertIfGiven {
                b.allow_unauthenticated()
            } else {
                b
            };
            Some(b.build().map_err(TlsError::Verifier)?)
        }
    };
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(TlsError::CertAndKey)?;
    // The server speaks HTTP/1.1 only.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// `RequestClientCert` / `RequireAnyClientCert`: a client certificate is
/// asked for (or required) but not checked against a CA, as in Go. The
/// handshake signature is still verified, so the client holds the key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
