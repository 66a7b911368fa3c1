//! The hub connections' TLS — pool, migrations, LISTEN and the walsender client alike: libpq's
//! `sslmode`, `sslrootcert`, `sslcert` and `sslkey`, read from the database URL (or the
//! `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY` variables), over rustls.
//!
//! The modes mean what they mean to libpq: `disable` never encrypts; `prefer` (the default)
//! encrypts when the server offers it; `require` encrypts and, like libpq, checks the chain only
//! when `sslrootcert` is given; `verify-ca` checks the chain; `verify-full` checks the chain and
//! that the certificate names the host. The CA is `sslrootcert` (a PEM file, or `system` for the
//! Mozilla roots), else `~/.postgresql/root.crt` when it exists, else the Mozilla roots.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// How a hub connection uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Result<SslMode, TlsError> {
        Ok(match text {
            "disable" => SslMode::Disable,
            // libpq's `allow` tries plain first; ferry encrypts when it can instead
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(TlsError::BadMode(other.to_string())),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// What tokio-postgres is told: it knows only whether TLS is off, optional or required.
    pub fn for_tokio_postgres(self) -> tokio_postgres::config::SslMode {
        match self {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        }
    }
}

/// A TLS setting that cannot work. Never retried: the operator fixes the URL or the files.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("sslmode={0} is not one of disable, prefer, require, verify-ca, verify-full")]
    BadMode(String),
    #[error("cannot read the {what} {path}: {reason}")]
    Read {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("sslcert and sslkey go together: give both files or neither")]
    HalfClientCert,
    #[error("the client certificate {path} does not fit its key: {source}")]
    ClientCert {
        path: String,
        #[source]
        source: rustls::Error,
    },
}

/// The TLS part of a hub URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: SslMode,
    /// A PEM file of CA certificates, or `system`.
    pub root_cert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

const TLS_KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// `%2F` → `/` in a URL's query value.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl TlsSettings {
    /// Takes the TLS parameters out of a connection string (a `postgres://` URL's query, or
    /// `key=value` words), returning the rest for tokio-postgres and the settings. Parameters the
    /// string lacks come from the libpq variables.
    pub fn split(url: &str) -> Result<(String, TlsSettings), TlsError> {
        let mut found: Vec<(String, String)> = Vec::new();
        let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            match url.split_once('?') {
                Some((base, query)) => {
                    let mut kept = Vec::new();
                    for pair in query.split('&').filter(|p| !p.is_empty()) {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        if TLS_KEYS.contains(&k) {
                            found.push((k.to_string(), percent_decode(v)));
                        } else {
                            kept.push(pair);
                        }
                    }
                    if kept.is_empty() {
                        base.to_string()
                    } else {
                        format!("{base}?{}", kept.join("&"))
                    }
                }
                None => url.to_string(),
            }
        } else {
            let mut kept = Vec::new();
            for word in url.split_whitespace() {
                match word.split_once('=') {
                    Some((k, v)) if TLS_KEYS.contains(&k.trim()) => {
                        found.push((k.trim().to_string(), v.trim_matches('\'').to_string()))
                    }
                    _ => kept.push(word),
                }
            }
            kept.join(" ")
        };
        let get = |key: &str, var: &str| {
            found
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .or_else(|| std::env::var(var).ok())
                .filter(|v| !v.is_empty())
        };
        let mode = match get("sslmode", "PGSSLMODE") {
            Some(m) => SslMode::parse(&m)?,
            None => SslMode::Prefer,
        };
        let root_cert = get("sslrootcert", "PGSSLROOTCERT");
        // libpq: `require` with a CA file given checks the chain, as verify-ca does
        let mode = if mode == SslMode::Require && root_cert.is_some() {
            SslMode::VerifyCa
        } else {
            mode
        };
        let settings = TlsSettings {
            mode,
            root_cert,
            cert: get("sslcert", "PGSSLCERT"),
            key: get("sslkey", "PGSSLKEY"),
        };
        if settings.cert.is_some() != settings.key.is_some() {
            return Err(TlsError::HalfClientCert);
        }
        Ok((rest, settings))
    }

    /// Where the CA certificates come from, as said in errors.
    pub fn root_source(&self) -> String {
        match self.root_cert.as_deref() {
            Some("system") => "the Mozilla root CAs (sslrootcert=system)".into(),
            Some(path) => format!("sslrootcert={path}"),
            None => match default_root_file() {
                Some(p) => p.display().to_string(),
                None => "the Mozilla root CAs (no sslrootcert given)".into(),
            },
        }
    }

    fn roots(&self) -> Result<RootCertStore, TlsError> {
        let file = match self.root_cert.as_deref() {
            Some("system") => None,
            Some(path) => Some(PathBuf::from(path)),
            None => default_root_file(),
        };
        let mut roots = RootCertStore::empty();
        match file {
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            Some(path) => {
                let read = |reason: String| TlsError::Read {
                    what: "CA file (sslrootcert)",
                    path: path.display().to_string(),
                    reason,
                };
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&path)
                    .map_err(|e| read(e.to_string()))?
                    .collect::<Result<_, _>>()
                    .map_err(|e| read(e.to_string()))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(read("it holds no PEM certificate".into()));
                }
            }
        }
        Ok(roots)
    }

    /// The rustls configuration every hub connection uses (unused when `mode` is `disable`).
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match self.mode {
            SslMode::Disable | SslMode::Prefer | SslMode::Require => Arc::new(EncryptOnly {
                provider: provider.clone(),
            }),
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let chain = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(self.roots()?),
                    provider.clone(),
                )
                .build()
                .map_err(|e| TlsError::Read {
                    what: "CA file (sslrootcert)",
                    path: self.root_source(),
                    reason: e.to_string(),
                })?;
                Arc::new(Chain {
                    inner: chain,
                    check_name: self.mode == SslMode::VerifyFull,
                })
            }
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                    .and_then(|i| i.collect::<Result<_, _>>())
                    .map_err(|e| TlsError::Read {
                        what: "client certificate (sslcert)",
                        path: cert.clone(),
                        reason: e.to_string(),
                    })?;
                let pk = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Read {
                    what: "client key (sslkey)",
                    path: key.clone(),
                    reason: e.to_string(),
                })?;
                builder
                    .with_client_auth_cert(certs, pk)
                    .map_err(|source| TlsError::ClientCert {
                        path: cert.clone(),
                        source,
                    })?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }

    /// One sentence on why a connection failed, when TLS is the reason: `error` is the
    /// failure's text with its causes.
    pub fn explain(&self, error: &str, host: &str) -> Option<String> {
        let mode = self.mode.as_str();
        if error.contains("UnknownIssuer") || error.contains("BadSignature") {
            Some(format!(
                "the server's certificate is not signed by a CA in {} (sslmode={mode}): give the CA that signed it with sslrootcert=<file>",
                self.root_source()
            ))
        } else if error.contains("not valid for name") || error.contains("NotValidForName") {
            Some(format!(
                "the server's certificate does not name the host {host} (sslmode=verify-full): connect with a host name the certificate names, or use sslmode=verify-ca"
            ))
        } else if error.contains("server does not support TLS") {
            Some(format!(
                "the server does not accept TLS connections (sslmode={mode}): turn ssl on at the server, or use sslmode=prefer"
            ))
        } else if error.contains("no encryption") && self.mode == SslMode::Disable {
            Some(
                "the server accepts only TLS connections (sslmode=disable): use sslmode=require, or verify-full with the server's CA".into(),
            )
        } else if error.contains("Expired") || error.contains("NotValidYet") {
            Some(format!(
                "the server's certificate is outside its validity dates (sslmode={mode})"
            ))
        } else {
            None
        }
    }
}

fn default_root_file() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let p = Path::new(&home).join(".postgresql").join("root.crt");
    p.is_file().then_some(p)
}

/// `prefer` / `require` without a CA: the session is encrypted and the handshake's signatures
/// checked, but whose certificate it is is not (libpq's meaning of those modes).
#[derive(Debug)]
struct EncryptOnly {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `verify-ca` / `verify-full`: the chain must lead to a trusted CA; the host name is checked
/// only for `verify-full`.
#[derive(Debug)]
struct Chain {
    inner: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for Chain {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_tls_parameters_out_of_a_url() {
        let (rest, s) = TlsSettings::split(
            "postgres://u:p@h:5/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u:p@h:5/db?application_name=x");
        assert_eq!(s.mode, SslMode::VerifyFull);
        assert_eq!(s.root_cert.as_deref(), Some("/tmp/ca.pem"));
        let (rest, s) = TlsSettings::split("host=h dbname=d sslmode=require").unwrap();
        assert_eq!(rest, "host=h dbname=d");
        assert_eq!(s.mode, SslMode::Require);
        let (_, s) = TlsSettings::split("postgres://h/db?sslmode=require&sslrootcert=/ca").unwrap();
        assert_eq!(
            s.mode,
            SslMode::VerifyCa,
            "libpq: require with a CA checks the chain"
        );
        assert!(matches!(
            TlsSettings::split("postgres://h/db?sslmode=verify"),
            Err(TlsError::BadMode(_))
        ));
        assert!(matches!(
            TlsSettings::split("postgres://h/db?sslcert=/c"),
            Err(TlsError::HalfClientCert)
        ));
    }
}
