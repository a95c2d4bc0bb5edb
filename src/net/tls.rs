//! Which servers are trusted, the same for every HTTP client of a run (awc in async mode,
//! ureq in sync mode and for S3): the machine's roots, the `--ca-cert` files on top, the
//! bundled webpki roots only when the machine has none; and what a refused handshake
//! means, in words a user can act on.
//!
//! Pure: plain inputs (certificates, paths), plain outputs (a rustls `ClientConfig`, a
//! ureq `TlsConfig`). No actix, no config: `config` decides what to ask for.

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// A `--ca-cert` file that cannot be used: a settings error (exit 2), before any request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaError {
    #[error("{}: cannot read: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    /// DER, or anything else without a PEM block: the usual mistake is a `.der`/`.cer`.
    #[error("{}: not PEM (no -----BEGIN CERTIFICATE----- block; convert DER with `openssl x509 -inform der`)", path.display())]
    NotPem { path: PathBuf },
    /// PEM, but only keys or requests: a CA file must hold the certificate.
    #[error("{}: holds no certificate (its PEM blocks are of other kinds)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: certificate {number} cannot be a root: {reason}", path.display())]
    BadCertificate { path: PathBuf, number: usize, reason: String },
}

/// Where the roots under the `--ca-cert` files came from, for the run's first log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// The machine's store (`SSL_CERT_FILE` / `SSL_CERT_DIR` when set).
    System,
    /// The machine had none: the webpki roots built into the binary.
    Bundled,
}

/// What the machine's store held, as read (see [`SystemRoots::load`]).
#[derive(Debug, Default)]
pub struct SystemRoots {
    pub certs: Vec<CertificateDer<'static>>,
    /// Files or folders that could not be read: warnings, since the rest still works.
    pub problems: Vec<String>,
}

impl SystemRoots {
    /// The machine's roots: `SSL_CERT_FILE` and `SSL_CERT_DIR` when either is set (as
    /// OpenSSL, curl and Python read them), else the system bundle openssl-probe finds.
    pub fn load() -> Self {
        let found = rustls_native_certs::load_native_certs();
        Self { certs: found.certs, problems: found.errors.iter().map(ToString::to_string).collect() }
    }
}

/// The roots every client of a run checks a server's chain against, in the two forms the
/// clients take; built once per run.
#[derive(Clone)]
pub struct Trust {
    /// DER: ureq takes roots only as certificates, and handing it this very list is what
    /// keeps both modes trusting the same servers.
    certs: Arc<Vec<CertificateDer<'static>>>,
    /// The same roots parsed once, for rustls (awc); parsing per client would repeat it.
    store: Arc<RootCertStore>,
    /// One crypto provider (ring) for every client, as the rest of the tree uses.
    provider: Arc<CryptoProvider>,
    pub base: Base,
    /// Roots taken from `base`.
    pub base_roots: usize,
    /// Roots added by `--ca-cert` / `CA_CERT`.
    pub extra_roots: usize,
    /// What could not be read from the machine's store, to warn about.
    pub problems: Vec<String>,
    /// `--insecure`: no certificate is checked. Off unless asked for; said loudly.
    pub insecure: bool,
}

impl fmt::Debug for Trust {
    // Hundreds of certificates would drown a Config's Debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trust")
            .field("base", &self.base)
            .field("base_roots", &self.base_roots)
            .field("extra_roots", &self.extra_roots)
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

impl Trust {
    /// The machine's roots (`system`), or the bundled ones when it has no usable root, plus
    /// every certificate in `ca_files`. A bad CA file is an error: trusting less than
    /// asked would fail every request later with a less helpful message.
    pub fn new(system: SystemRoots, ca_files: &[PathBuf], insecure: bool) -> Result<Self, CaError> {
        let mut store = RootCertStore::empty();
        let mut certs = Vec::new();
        // A system bundle may hold a certificate webpki cannot use as an anchor (an
        // odd legacy root): skipped, as every rustls client skips it.
        for cert in system.certs {
            if store.add(cert.clone()).is_ok() {
                certs.push(cert);
            }
        }
        let base = if certs.is_empty() {
            for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
                if store.add(cert.clone()).is_ok() {
                    certs.push(cert.clone());
                }
            }
            Base::Bundled
        } else {
            Base::System
        };
        let base_roots = certs.len();
        for path in ca_files {
            for cert in read_ca_file(path)? {
                store.add(cert.clone()).expect("read_ca_file checked it is a usable root");
                certs.push(cert);
            }
        }
        Ok(Self {
            extra_roots: certs.len() - base_roots,
            certs: Arc::new(certs),
            store: Arc::new(store),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            base,
            base_roots,
            problems: system.problems,
            insecure,
        })
    }

    /// rustls settings for awc, offering `alpn` (h2 first: awc multiplexes on it).
    pub fn client_config(&self, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        let builder = ClientConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions");
        let mut config = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(Arc::clone(&self.provider))))
                .with_no_client_auth()
        } else {
            builder.with_root_certificates(Arc::clone(&self.store)).with_no_client_auth()
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// The same trust for a ureq agent (sync mode, the S3 store). ureq builds its own
    /// rustls config and offers no ALPN, so it speaks HTTP/1.1.
    pub fn ureq_config(&self) -> ureq::tls::TlsConfig {
        let roots = self.certs.iter().map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned());
        ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots.collect())))
            .unversioned_rustls_crypto_provider(Arc::clone(&self.provider))
            .disable_verification(self.insecure)
            .build()
    }
}

/// Every certificate in a PEM file, each checked to be usable as a root.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, CaError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CaError::Unreadable { path: path.to_path_buf(), reason: e.to_string() })?;
    let mut certs = Vec::new();
    for (i, cert) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
        let cert = cert.map_err(|e| CaError::BadCertificate {
            path: path.to_path_buf(),
            number: i + 1,
            reason: e.to_string(),
        })?;
        RootCertStore::empty().add(cert.clone()).map_err(|e| CaError::BadCertificate {
            path: path.to_path_buf(),
            number: i + 1,
            reason: e.to_string(),
        })?;
        certs.push(cert);
    }
    if certs.is_empty() {
        let pem = bytes.windows(11).any(|w| w == b"-----BEGIN ");
        let path = path.to_path_buf();
        return Err(if pem { CaError::NoCertificate { path } } else { CaError::NotPem { path } });
    }
    Ok(certs)
}

/// Why a TLS handshake failed, in words, when `err` is (or wraps, through `io::Error`s
/// and sources) a rustls error; `None` for any other error.
pub fn refusal(err: &(dyn StdError + 'static)) -> Option<String> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(describe(tls));
        }
        // io::Error's `source` skips the error it wraps; look at that one itself.
        current = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
            None => err.source(),
        };
    }
    None
}

/// [`refusal`] for ureq's error, which names no source.
pub fn ureq_refusal(err: &ureq::Error) -> Option<String> {
    match err {
        ureq::Error::Rustls(tls) => Some(describe(tls)),
        ureq::Error::Io(io) => refusal(io),
        _ => None,
    }
}

fn describe(err: &rustls::Error) -> String {
    match err {
        rustls::Error::InvalidCertificate(cert) => certificate(cert),
        rustls::Error::AlertReceived(alert) => format!("the server ended the handshake ({alert:?})"),
        other => other.to_string(),
    }
}

/// The certificate problems people meet, said as they would look them up; the rest as
/// rustls says them.
fn certificate(err: &CertificateError) -> String {
    match err {
        CertificateError::UnknownIssuer => {
            "certificate issued by an unknown CA (not among the trusted roots; trust its CA with --ca-cert)"
                .into()
        }
        CertificateError::ExpiredContext { time, not_after } => {
            match time.as_secs().saturating_sub(not_after.as_secs()) / 86_400 {
                0 => "certificate expired today".into(),
                1 => "certificate expired 1 day ago".into(),
                days => format!("certificate expired {days} days ago"),
            }
        }
        CertificateError::Expired => "certificate expired".into(),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate not valid yet (or this machine's clock is behind)".into()
        }
        // rustls's own words name the expected and presented names.
        e @ CertificateError::NotValidForNameContext { .. } => e.to_string(),
        CertificateError::NotValidForName => "certificate not valid for this host name".into(),
        CertificateError::Revoked => "certificate revoked".into(),
        CertificateError::BadSignature => "certificate has a bad signature".into(),
        e => format!("invalid certificate: {e}"),
    }
}

/// `--insecure`: accepts any certificate, still checking the handshake's signatures (so
/// the connection is at least with whoever holds the certificate's key).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed CA, as PEM.
    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn bad_ca_files_say_what_is_wrong_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let der = write(dir.path(), "ca.der", b"\x30\x82\x01\x0a binary");
        let key =
            write(dir.path(), "key.pem", rcgen::KeyPair::generate().unwrap().serialize_pem().as_bytes());
        let broken = write(
            dir.path(),
            "broken.pem",
            b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        );
        let cases = [
            (&missing, "cannot read"),
            (&der, "not PEM"),
            (&key, "holds no certificate"),
            (&broken, "certificate 1 cannot be a root"),
        ];
        for (path, says) in cases {
            let e = Trust::new(SystemRoots::default(), std::slice::from_ref(path), false)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(&path.display().to_string()) && e.contains(says), "{e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn the_machines_roots_come_first_and_the_bundled_only_when_it_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let ca = write(dir.path(), "ca.pem", format!("{}{}", ca_pem(), ca_pem()).as_bytes());
        let system = SystemRoots { certs: read_ca_file(&ca).unwrap(), problems: vec![] };
        let trust = Trust::new(system, &[], false).unwrap();
        assert_eq!((trust.base, trust.base_roots, trust.extra_roots), (Base::System, 2, 0));

        let trust = Trust::new(SystemRoots::default(), &[ca], false).unwrap();
        assert_eq!(trust.base, Base::Bundled);
        assert!(trust.base_roots > 50, "the webpki roots: {}", trust.base_roots);
        assert_eq!(trust.extra_roots, 2, "every certificate of a CA file");
        assert_eq!(trust.certs.len(), trust.store.roots.len(), "ureq and awc get the same roots");
    }

    #[test]
    fn a_refused_certificate_is_found_inside_io_errors_and_said_in_words() {
        let refused = |e: CertificateError| {
            let io =
                std::io::Error::new(std::io::ErrorKind::InvalidData, rustls::Error::InvalidCertificate(e));
            refusal(&io).unwrap()
        };
        assert!(refused(CertificateError::UnknownIssuer).contains("unknown CA"));
        assert!(refused(CertificateError::Expired).contains("expired"));
        let day = 86_400;
        let expired = CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(10 * day)),
            not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(7 * day)),
        };
        assert_eq!(refused(expired), "certificate expired 3 days ago");
        assert!(refused(CertificateError::NotValidForName).contains("not valid for this host name"));
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(refusal(&plain), None);
        assert_eq!(ureq_refusal(&ureq::Error::HostNotFound), None);
    }

    #[test]
    fn insecure_configs_accept_anything_and_say_so() {
        let trust = Trust::new(SystemRoots::default(), &[], true).unwrap();
        assert!(trust.ureq_config().disable_verification());
        let config = trust.client_config(&[b"h2"]);
        assert_eq!(config.alpn_protocols, [b"h2".to_vec()]);
        assert!(
            !Trust::new(SystemRoots::default(), &[], false).unwrap().ureq_config().disable_verification()
        );
    }
}
