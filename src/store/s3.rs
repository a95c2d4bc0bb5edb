//! S3-compatible object storage, blocking and pure of actix: where `-o s3://bucket/prefix`
//! is parsed, where endpoint, region and credentials come from (the standard AWS
//! variables and `~/.aws` files), and a small client for the few calls a store needs
//! (`store::upload` streams an object through it in parts).
//!
//! Requests are signed by `rusty-s3` (Sans-IO: it only builds presigned URLs and parses
//! XML) and sent by the `ureq` agent the project already has, so S3 adds no HTTP stack,
//! no async runtime and no second TLS setup.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusty_s3::actions::{CompleteMultipartUploadResponse, CreateMultipartUpload, ListObjectsV2, S3Action};
use rusty_s3::{Bucket, Credentials, Method, UrlStyle};
use url::Url;

/// How long a signed URL stays valid. It is signed right before it is sent, so this
/// only needs to cover clock skew and a slow start of the request, not its length.
const SIGNED_FOR: Duration = Duration::from_secs(15 * 60);

/// Where objects go: `s3://bucket/some/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket every object of the run is written to.
    pub bucket: String,
    /// Key prefix without leading or trailing `/` (empty for the bucket's root), so
    /// joining it with a name never gives `a//b` or a key starting with `/`.
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3://bucket` or `s3://bucket/prefix/`; the bucket name follows S3's rules
    /// (3 to 63 of `a-z 0-9 . -`, starting and ending with a letter or digit).
    pub fn parse(text: &str) -> Result<S3Location, String> {
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{text:?} is not an S3 location: it must start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{text:?} names no bucket: write s3://bucket/prefix"));
        }
        let valid_chars =
            bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        let ends_ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !(3..=63).contains(&bucket.len())
            || !valid_chars
            || !ends_ok(bucket.bytes().next())
            || !ends_ok(bucket.bytes().last())
        {
            return Err(format!(
                "{bucket:?} is not a valid bucket name: 3 to 63 lowercase letters, digits, '.' or '-', \
                 starting and ending with a letter or digit"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|segment| segment.is_empty() && !prefix.is_empty()) {
            return Err(format!("{text:?} has an empty path segment (//) in its prefix"));
        }
        Ok(S3Location { bucket: bucket.to_string(), prefix: prefix.to_string() })
    }

    /// The key of `name` under the prefix.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() { name.to_string() } else { format!("{}/{name}", self.prefix) }
    }

    /// The prefix as a listing prefix: with its trailing `/`, so `s3://b/cats` does not
    /// also list `cats2/...`.
    pub fn list_prefix(&self) -> String {
        if self.prefix.is_empty() { String::new() } else { format!("{}/", self.prefix) }
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Endpoint, region and credentials, read the way the AWS tools read them.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// Base URL of the S3 API: AWS's regional endpoint, or a MinIO/SeaweedFS/R2 one.
    pub endpoint: Url,
    /// Signed into every request; S3-compatible servers mostly accept any.
    pub region: String,
    /// Path style (`endpoint/bucket/key`) for custom endpoints, which rarely have
    /// wildcard DNS; virtual-host style (`bucket.endpoint/key`) for AWS, which wants it.
    pub path_style: bool,
    /// The signing keys (Debug shows the access key only, never the secret).
    pub credentials: Credentials,
    /// Where the credentials came from, for messages ("AWS_ACCESS_KEY_ID", "profile
    /// default in ~/.aws/credentials"): an access-denied error should say which keys.
    pub credentials_source: String,
}

impl S3Settings {
    /// Reads the settings through `get` (the environment, or a fake one in tests) and
    /// the `~/.aws` files under `home`. Empty variables count as unset, as for the AWS CLI.
    pub fn from_env(get: impl Fn(&str) -> Option<String>, home: Option<&Path>) -> Result<S3Settings, String> {
        let var = |name: &str| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let explicit_profile = var("AWS_PROFILE");
        let profile = explicit_profile.clone().unwrap_or_else(|| "default".to_string());
        let aws_file = |override_var: &str, name: &str| -> Option<PathBuf> {
            var(override_var).map(PathBuf::from).or_else(|| home.map(|h| h.join(".aws").join(name)))
        };
        let config_path = aws_file("AWS_CONFIG_FILE", "config");
        let credentials_path = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
        // ~/.aws/config names profiles `[profile name]`, except `[default]`.
        let config_section =
            if profile == "default" { profile.clone() } else { format!("profile {profile}") };
        let config = read_ini_section(config_path.as_deref(), &config_section)?;
        let credentials_file = read_ini_section(credentials_path.as_deref(), &profile)?;

        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .or_else(|| config.as_ref().and_then(|c| c.get("region").cloned()))
            .unwrap_or_else(|| "us-east-1".to_string());
        let custom_endpoint = var("AWS_ENDPOINT_URL_S3")
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .or_else(|| config.as_ref().and_then(|c| c.get("endpoint_url").cloned()));
        let path_style = custom_endpoint.is_some();
        let endpoint_text = custom_endpoint.unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let endpoint = Url::parse(&endpoint_text)
            .map_err(|e| format!("S3 endpoint {endpoint_text:?} is not a URL: {e}"))?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(format!(
                "S3 endpoint {endpoint_text:?} must be an http:// or https:// URL with a host"
            ));
        }

        let (credentials, credentials_source) = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        {
            (Some(key), Some(secret)) => {
                let creds = match var("AWS_SESSION_TOKEN") {
                    Some(token) => Credentials::new_with_token(key, secret, token),
                    None => Credentials::new(key, secret),
                };
                (creds, "AWS_ACCESS_KEY_ID".to_string())
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither".to_string());
            }
            (None, None) => {
                // The credentials file first, then the config file, as the AWS CLI does.
                let found = [(credentials_file.as_ref(), &credentials_path), (config.as_ref(), &config_path)]
                    .into_iter()
                    .find_map(|(section, path)| {
                        let section = section?;
                        let key = section.get("aws_access_key_id")?;
                        let secret = section.get("aws_secret_access_key")?;
                        let creds = match section.get("aws_session_token") {
                            Some(token) => Credentials::new_with_token(key, secret, token),
                            None => Credentials::new(key, secret),
                        };
                        let path = path.as_deref().map_or_else(String::new, |p| p.display().to_string());
                        Some((creds, format!("profile {profile} in {path}")))
                    });
                match found {
                    Some(found) => found,
                    None if explicit_profile.is_some() && credentials_file.is_none() && config.is_none() => {
                        return Err(format!(
                            "AWS_PROFILE={profile}, but no profile of that name is in ~/.aws/credentials or ~/.aws/config"
                        ));
                    }
                    None => {
                        return Err(format!(
                            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                             (and AWS_SESSION_TOKEN for temporary ones), or put aws_access_key_id and \
                             aws_secret_access_key in profile [{profile}] of ~/.aws/credentials \
                             (AWS_PROFILE picks another profile)"
                        ));
                    }
                }
            }
        };
        Ok(S3Settings { endpoint, region, path_style, credentials, credentials_source })
    }
}

/// One section of an AWS INI file (`[name]`, `key = value`, `#`/`;` comments), or None
/// when the file or the section is missing. Indented lines are sub-settings of the line
/// above (`s3 =` then `  addressing_style = path`) and are skipped.
fn read_ini_section(path: Option<&Path>, section: &str) -> Result<Option<HashMap<String, String>>, String> {
    let Some(path) = path else { return Ok(None) };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    Ok(parse_ini_section(&text, section))
}

fn parse_ini_section(text: &str, section: &str) -> Option<HashMap<String, String>> {
    let mut current: Option<String> = None;
    let mut found: Option<HashMap<String, String>> = None;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            if name == section {
                found.get_or_insert_with(HashMap::new);
            }
            current = Some(name);
            continue;
        }
        if current.as_deref() == Some(section)
            && let Some((key, value)) = line.split_once('=')
            && let Some(values) = found.as_mut()
        {
            values.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    found
}

/// What went wrong talking to S3, told apart the way callers branch: retry, give up on
/// this object, or give up on the run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum S3Error {
    /// The bucket or the multipart upload does not exist (a missing object is `None`
    /// from `get`/`head`, not this).
    #[error("not found: {code}: {message}")]
    NotFound {
        /// S3's error code (`NoSuchBucket`, `NoSuchUpload`), for the message.
        code: String,
        /// S3's own explanation.
        message: String,
    },
    /// 403: wrong keys, a bad signature, or no permission; retrying cannot help.
    #[error("access denied: {code}: {message}")]
    AccessDenied {
        /// S3's error code (`AccessDenied`, `SignatureDoesNotMatch`, `InvalidAccessKeyId`).
        code: String,
        /// S3's own explanation.
        message: String,
    },
    /// Any other error answer, with what the XML body said.
    #[error("S3 answered {status}: {code}: {message}")]
    Server {
        /// The HTTP status: 5xx and 429 are worth retrying.
        status: u16,
        /// S3's error code, or empty when the body had none.
        code: String,
        /// S3's own explanation, or the start of the body.
        message: String,
    },
    /// No connection could be made, or it broke.
    #[error("cannot reach S3: {0}")]
    Connection(String),
    /// The server stopped answering for longer than the timeout.
    #[error("S3 timed out: {0}")]
    Timeout(String),
    /// An answer we cannot use (bad XML, no ETag) or a request S3 cannot take (too many
    /// parts); not worth retrying.
    #[error("S3: {0}")]
    Invalid(String),
}

impl S3Error {
    /// Worth another try later: the network, timeouts, 5xx, throttling (429/503
    /// `SlowDown`), and the conflicts S3 asks to retry.
    pub fn is_retryable(&self) -> bool {
        match self {
            S3Error::Connection(_) | S3Error::Timeout(_) => true,
            S3Error::Server { status, code, .. } => {
                *status >= 500
                    || *status == 429
                    || matches!(
                        code.as_str(),
                        "SlowDown" | "RequestTimeout" | "InternalError" | "ConditionalRequestConflict"
                    )
            }
            S3Error::NotFound { .. } | S3Error::AccessDenied { .. } | S3Error::Invalid(_) => false,
        }
    }

    fn from_ureq(err: ureq::Error) -> S3Error {
        if let Some(reason) = crate::net::tls::ureq_refusal(&err) {
            // The same certificate on every try: not a connection error to retry.
            return S3Error::Invalid(format!("TLS failed: {reason}"));
        }
        match err {
            ureq::Error::Timeout(what) => S3Error::Timeout(what.to_string()),
            ureq::Error::Io(e)
                if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) =>
            {
                S3Error::Timeout(e.to_string())
            }
            other => S3Error::Connection(other.to_string()),
        }
    }

    /// The error for a non-success answer, from S3's XML error body.
    fn from_answer(status: u16, body: &str) -> S3Error {
        let code = xml_text(body, "Code").unwrap_or_default();
        let message = xml_text(body, "Message").unwrap_or_else(|| body.chars().take(200).collect());
        match status {
            403 => S3Error::AccessDenied { code, message },
            404 => S3Error::NotFound { code, message },
            _ => S3Error::Server { status, code, message },
        }
    }
}

/// The text of the first `<tag>...</tag>` in a small XML answer. Enough for S3's flat
/// error bodies and upload listings; entities are decoded for the five XML ones.
fn xml_text(body: &str, tag: &str) -> Option<String> {
    xml_texts(body, tag).into_iter().next()
}

fn xml_texts(body: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(
            after[..end]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[end + close.len()..];
    }
    out
}

/// A blocking client for one bucket.
pub struct S3Client {
    /// The bucket and its URL style; every action is signed against it.
    bucket: Bucket,
    /// The keys every request is signed with.
    credentials: Credentials,
    /// One connection pool for all threads; status codes are answers, not errors.
    agent: ureq::Agent,
}

impl fmt::Debug for S3Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Client")
            .field("bucket", &self.bucket.name())
            .field("url", &self.bucket.base_url())
            .finish()
    }
}

/// An answer read whole: status, the headers we use, the body.
struct S3Response {
    status: u16,
    etag: Option<String>,
    length: Option<u64>,
    body: Vec<u8>,
}

impl S3Response {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn error(&self) -> S3Error {
        S3Error::from_answer(self.status, &self.text())
    }

    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl S3Client {
    /// A client for `bucket`; `timeout` bounds connecting and each stall (a read or
    /// write making no progress), not a whole transfer, so large parts on a slow link
    /// still go through. `tls` is the run's trust (`Trust::ureq_config`): an endpoint behind a company CA
    /// is trusted as the gallery's hosts are. `proxy`: the run's proxy for the endpoint, if any (tunnelled, or SOCKS5).
    pub fn new(
        settings: &S3Settings,
        bucket: &str,
        timeout: Duration,
        tls: ureq::tls::TlsConfig,
        proxy: Option<&crate::net::proxy::Proxy>,
    ) -> Result<S3Client, S3Error> {
        // Dots in a bucket name break the TLS wildcard of virtual-host style.
        let style =
            if settings.path_style || bucket.contains('.') { UrlStyle::Path } else { UrlStyle::VirtualHost };
        let bucket =
            Bucket::new(settings.endpoint.clone(), style, bucket.to_string(), settings.region.clone())
                .map_err(|e| S3Error::Invalid(format!("bucket {bucket:?} at {}: {e}", settings.endpoint)))?;
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_connect(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .timeout_per_write(Some(timeout))
            .user_agent(concat!("image-scraper/", env!("CARGO_PKG_VERSION")))
            // A presigned URL is for one host; a redirect would need signing anew.
            .max_redirects(0)
            // Always set: ureq's default reads the proxy variables by rules of its own; the
            // run's are curl's (crate::net::proxy), the same as for the site.
            // An HTTP proxy tunnels (CONNECT), a SOCKS5 one relays; both as sync mode does.
            .proxy(proxy.map(crate::net::ureq_forward::ureq_proxy).transpose().map_err(S3Error::Invalid)?)
            .build()
            .into();
        Ok(S3Client { bucket, credentials: settings.credentials.clone(), agent })
    }

    /// The bucket this client writes to.
    pub fn bucket(&self) -> &str {
        self.bucket.name()
    }

    /// Signs `action` and sends it with its signed headers (S3 rejects a request that
    /// lacks one) and `body`, then reads the whole answer (XML, or one object).
    fn send<'a, A: S3Action<'a>>(&self, mut action: A, body: &[u8]) -> Result<S3Response, S3Error> {
        let url = action.sign(SIGNED_FOR);
        let url = url.as_str();
        let headers: Vec<(String, String)> =
            action.headers_mut().iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let result = match A::METHOD {
            Method::Get => with_headers(self.agent.get(url), &headers).call(),
            Method::Head => with_headers(self.agent.head(url), &headers).call(),
            Method::Delete => with_headers(self.agent.delete(url), &headers).call(),
            // Bodies are always sent, empty ones too: that sends Content-Length: 0,
            // without which AWS answers 411.
            Method::Post => with_headers(self.agent.post(url), &headers).send(body),
            Method::Put => with_headers(self.agent.put(url), &headers).send(body),
        };
        let mut response = result.map_err(S3Error::from_ureq)?;
        let header =
            |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let etag = header("etag");
        let length = header("content-length").and_then(|v| v.parse().ok());
        let status = response.status().as_u16();
        let body = if A::METHOD == Method::Head {
            Vec::new()
        } else {
            // ureq caps bodies at 10 MB by default; objects may be larger.
            response.body_mut().with_config().limit(u64::MAX).read_to_vec().map_err(S3Error::from_ureq)?
        };
        Ok(S3Response { status, etag, length, body })
    }

    /// Creates the bucket; one we already own is fine.
    pub fn create_bucket(&self) -> Result<(), S3Error> {
        let action = self.bucket.create_bucket(&self.credentials);
        // The body names the region (AWS refuses an empty one outside us-east-1).
        let body = action.body();
        let answer = self.send(action, body.as_bytes())?;
        if answer.ok() {
            return Ok(());
        }
        match answer.error() {
            S3Error::Server { code, .. } if code == "BucketAlreadyOwnedByYou" => Ok(()),
            other => Err(other),
        }
    }

    /// The object's bytes, or None when there is no such key.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, S3Error> {
        let answer = self.send(self.bucket.get_object(Some(&self.credentials), key), &[])?;
        match answer.status {
            200..=299 => Ok(Some(answer.body)),
            // A missing bucket is an error, not an empty store.
            404 if xml_text(&answer.text(), "Code").as_deref() != Some("NoSuchBucket") => Ok(None),
            _ => Err(answer.error()),
        }
    }

    /// The object's size, or None when there is no such key. A HEAD answer has no body,
    /// so a missing bucket also reads as None here; `list` or `get` tell them apart.
    pub fn head(&self, key: &str) -> Result<Option<u64>, S3Error> {
        let answer = self.send(self.bucket.head_object(Some(&self.credentials), key), &[])?;
        match answer.status {
            200..=299 => Ok(Some(answer.length.unwrap_or(0))),
            404 => Ok(None),
            status => Err(S3Error::from_answer(status, "")),
        }
    }

    /// Writes the whole object (replacing any).
    pub fn put(&self, key: &str, bytes: &[u8]) -> Result<(), S3Error> {
        let answer = self.send(self.bucket.put_object(Some(&self.credentials), key), bytes)?;
        if answer.ok() { Ok(()) } else { Err(answer.error()) }
    }

    /// Writes the object only if the key is free; false when it was taken.
    ///
    /// A HEAD first (so a taken key costs no upload), then a PUT with `If-None-Match: *`,
    /// which S3 and SeaweedFS honour: two writers racing for one key, one gets 412. On a
    /// server that ignores the header the HEAD is all there is, and two writers between
    /// HEAD and PUT would both "win" (the last PUT replaces the first); one that rejects
    /// the header (501 NotImplemented) gets a plain PUT after the HEAD, with that same
    /// race. Names are claimed once per run before writing, so the race needs two runs
    /// writing one prefix at the same moment.
    pub fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<bool, S3Error> {
        if self.head(key)?.is_some() {
            return Ok(false);
        }
        let mut action = self.bucket.put_object(Some(&self.credentials), key);
        // Signed, so no proxy can strip it without breaking the signature.
        action.headers_mut().insert("if-none-match", "*");
        let answer = self.send(action, bytes)?;
        match answer.status {
            200..=299 => Ok(true),
            412 => Ok(false),
            // 409: another conditional write to this key is in flight; it will win or fail.
            409 if xml_text(&answer.text(), "Code").as_deref() == Some("ConditionalRequestConflict") => {
                Ok(false)
            }
            501 => {
                self.put(key, bytes)?;
                Ok(true)
            }
            _ => Err(answer.error()),
        }
    }

    /// Deletes the object; a missing one is already deleted.
    pub fn delete(&self, key: &str) -> Result<(), S3Error> {
        let answer = self.send(self.bucket.delete_object(Some(&self.credentials), key), &[])?;
        if answer.ok() || answer.status == 404 { Ok(()) } else { Err(answer.error()) }
    }

    /// Every key under `prefix` with its size, following continuation tokens.
    pub fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, S3Error> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
            if !prefix.is_empty() {
                action.with_prefix(prefix);
            }
            if let Some(token) = &token {
                action.with_continuation_token(token.as_str());
            }
            let answer = self.send(action, &[])?;
            if !answer.ok() {
                return Err(answer.error());
            }
            let page = ListObjectsV2::parse_response(&answer.text())
                .map_err(|e| S3Error::Invalid(format!("unreadable object listing: {e}")))?;
            out.extend(page.contents.into_iter().map(|c| (c.key, c.size.unwrap_or(0))));
            match page.next_continuation_token {
                Some(next) => token = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Starts a multipart upload; its id names it in the calls below.
    pub fn create_multipart(&self, key: &str) -> Result<String, S3Error> {
        let answer = self.send(self.bucket.create_multipart_upload(Some(&self.credentials), key), &[])?;
        if !answer.ok() {
            return Err(answer.error());
        }
        let created = CreateMultipartUpload::parse_response(&answer.text())
            .map_err(|e| S3Error::Invalid(format!("unreadable CreateMultipartUpload answer: {e}")))?;
        Ok(created.upload_id().to_string())
    }

    /// Uploads part `number` (1 to 10,000) and returns its ETag for `complete_multipart`.
    pub fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u16,
        bytes: &[u8],
    ) -> Result<String, S3Error> {
        let answer =
            self.send(self.bucket.upload_part(Some(&self.credentials), key, number, upload_id), bytes)?;
        if !answer.ok() {
            return Err(answer.error());
        }
        answer
            .etag
            .ok_or_else(|| S3Error::Invalid(format!("part {number} of {key} was stored without an ETag")))
    }

    /// Joins the parts, in order, into the object.
    pub fn complete_multipart(&self, key: &str, upload_id: &str, etags: &[String]) -> Result<(), S3Error> {
        // `body` takes the action by value: one makes the body, a twin is sent with it.
        let action = || {
            self.bucket.complete_multipart_upload(
                Some(&self.credentials),
                key,
                upload_id,
                etags.iter().map(String::as_str),
            )
        };
        let answer = self.send(action(), action().body().as_bytes())?;
        if !answer.ok() {
            return Err(answer.error());
        }
        // S3 may answer 200 and still fail, with an <Error> body sent once it knows.
        let text = answer.text();
        if CompleteMultipartUploadResponse::parse(&text).is_err() {
            let code = xml_text(&text, "Code").unwrap_or_default();
            let message = xml_text(&text, "Message").unwrap_or_else(|| text.chars().take(200).collect());
            return Err(S3Error::Server { status: answer.status, code, message });
        }
        Ok(())
    }

    /// Abandons a multipart upload and frees its parts; an unknown one is already gone.
    pub fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), S3Error> {
        let answer =
            self.send(self.bucket.abort_multipart_upload(Some(&self.credentials), key, upload_id), &[])?;
        if answer.ok() || answer.status == 404 { Ok(()) } else { Err(answer.error()) }
    }

    /// Multipart uploads begun and neither completed nor aborted under `prefix`, as
    /// (key, upload id): what a crashed run leaves, for start-up cleanup.
    /// One page (up to 1,000 uploads), which is plenty for the uploads of one run.
    pub fn list_multipart_uploads(&self, prefix: &str) -> Result<Vec<(String, String)>, S3Error> {
        // rusty-s3 has no ListMultipartUploads; it is a GET on the bucket with `?uploads`,
        // which ListObjectsV2 signs once its own query is swapped for that one.
        let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
        let query = action.query_mut();
        query.remove("list-type");
        query.remove("encoding-type");
        query.insert("uploads", "");
        if !prefix.is_empty() {
            query.insert("prefix", prefix.to_string());
        }
        let answer = self.send(action, &[])?;
        if !answer.ok() {
            return Err(answer.error());
        }
        let text = answer.text();
        let uploads = text.split("<Upload>").skip(1);
        Ok(uploads
            .filter_map(|upload| Some((xml_text(upload, "Key")?, xml_text(upload, "UploadId")?)))
            .collect())
    }
}

fn with_headers<B>(
    mut request: ureq::RequestBuilder<B>,
    headers: &[(String, String)],
) -> ureq::RequestBuilder<B> {
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn location_parses_bucket_and_normalises_prefix() {
        let loc = S3Location::parse("s3://demo/cats/2024/").unwrap();
        assert_eq!(loc, S3Location { bucket: "demo".into(), prefix: "cats/2024".into() });
        assert_eq!(loc.key("a.jpg"), "cats/2024/a.jpg");
        assert_eq!(loc.list_prefix(), "cats/2024/");
        let root = S3Location::parse("s3://demo").unwrap();
        assert_eq!(root.prefix, "");
        assert_eq!(root.key("a.jpg"), "a.jpg");
        assert_eq!(root.list_prefix(), "");
        assert_eq!(S3Location::parse("s3://demo//x/").unwrap().prefix, "x");
    }

    #[test]
    fn location_rejects_what_s3_would() {
        for bad in ["demo/cats", "s3://", "s3:///cats", "s3://Demo/x", "s3://ab", "s3://-ab/x", "s3://a_b/x"]
        {
            let err = S3Location::parse(bad).unwrap_err();
            assert!(!err.contains('\n'), "{err}");
        }
        assert!(S3Location::parse("s3://demo/a//b").unwrap_err().contains("empty path segment"));
    }

    #[test]
    fn settings_from_variables_with_a_custom_endpoint_use_path_style() {
        let s = S3Settings::from_env(
            env(&[
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:8333"),
                ("AWS_REGION", "eu-west-3"),
                ("AWS_ACCESS_KEY_ID", "AK"),
                ("AWS_SECRET_ACCESS_KEY", "SK"),
                ("AWS_SESSION_TOKEN", "TOK"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(s.endpoint.as_str(), "http://127.0.0.1:8333/");
        assert_eq!(s.region, "eu-west-3");
        assert!(s.path_style);
        assert_eq!(
            (s.credentials.key(), s.credentials.secret(), s.credentials.token()),
            ("AK", "SK", Some("TOK"))
        );
        assert_eq!(s.credentials_source, "AWS_ACCESS_KEY_ID");
    }

    #[test]
    fn the_s3_specific_endpoint_wins_and_aws_gets_virtual_hosts() {
        let keys = [("AWS_ACCESS_KEY_ID", "AK"), ("AWS_SECRET_ACCESS_KEY", "SK")];
        let s = S3Settings::from_env(
            env(&[
                keys[0],
                keys[1],
                ("AWS_ENDPOINT_URL", "http://a:1"),
                ("AWS_ENDPOINT_URL_S3", "http://b:2"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(s.endpoint.as_str(), "http://b:2/");
        let aws = S3Settings::from_env(env(&[keys[0], keys[1], ("AWS_DEFAULT_REGION", "ap-south-1")]), None)
            .unwrap();
        assert_eq!(aws.endpoint.as_str(), "https://s3.ap-south-1.amazonaws.com/");
        assert!(!aws.path_style);
        let default = S3Settings::from_env(env(&keys), None).unwrap();
        assert_eq!(default.region, "us-east-1");
        // Empty variables are unset.
        let empty = S3Settings::from_env(
            env(&[keys[0], keys[1], ("AWS_REGION", ""), ("AWS_ENDPOINT_URL", "")]),
            None,
        )
        .unwrap();
        assert_eq!((empty.region.as_str(), empty.path_style), ("us-east-1", false));
    }

    #[test]
    fn missing_credentials_name_the_variables() {
        let home = tempfile::tempdir().unwrap();
        let err = S3Settings::from_env(env(&[]), Some(home.path())).unwrap_err();
        assert!(err.contains("AWS_ACCESS_KEY_ID") && err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
        assert!(err.contains("~/.aws/credentials"), "{err}");
        let half = S3Settings::from_env(env(&[("AWS_ACCESS_KEY_ID", "AK")]), None).unwrap_err();
        assert!(half.contains("both"), "{half}");
        let bad = S3Settings::from_env(env(&[("AWS_ENDPOINT_URL", "ftp://x")]), None).unwrap_err();
        assert!(bad.contains("http"), "{bad}");
    }

    #[test]
    fn profiles_come_from_the_aws_files() {
        let home = tempfile::tempdir().unwrap();
        let aws = home.path().join(".aws");
        std::fs::create_dir(&aws).unwrap();
        std::fs::write(
            aws.join("credentials"),
            "# keys\n[default]\naws_access_key_id = DEF\naws_secret_access_key = DEFSECRET\n\n\
             [work]\naws_access_key_id=WORK\naws_secret_access_key=WORKSECRET\naws_session_token = T\n",
        )
        .unwrap();
        std::fs::write(
            aws.join("config"),
            "[default]\nregion = eu-north-1\n[profile work]\nregion = sa-east-1\n\
             endpoint_url = http://127.0.0.1:9000\ns3 =\n  addressing_style = path\n",
        )
        .unwrap();
        let default = S3Settings::from_env(env(&[]), Some(home.path())).unwrap();
        assert_eq!((default.credentials.key(), default.region.as_str()), ("DEF", "eu-north-1"));
        assert!(
            default.credentials_source.starts_with("profile default in "),
            "{}",
            default.credentials_source
        );
        let work = S3Settings::from_env(env(&[("AWS_PROFILE", "work")]), Some(home.path())).unwrap();
        assert_eq!((work.credentials.key(), work.credentials.secret()), ("WORK", "WORKSECRET"));
        assert_eq!((work.credentials.token(), work.region.as_str()), (Some("T"), "sa-east-1"));
        assert_eq!(work.endpoint.as_str(), "http://127.0.0.1:9000/");
        assert!(work.path_style);
        // The variables win over the files.
        let vars = S3Settings::from_env(
            env(&[("AWS_ACCESS_KEY_ID", "V"), ("AWS_SECRET_ACCESS_KEY", "VS"), ("AWS_REGION", "r")]),
            Some(home.path()),
        )
        .unwrap();
        assert_eq!((vars.credentials.key(), vars.region.as_str()), ("V", "r"));
        let missing = S3Settings::from_env(env(&[("AWS_PROFILE", "nope")]), Some(home.path())).unwrap_err();
        assert!(missing.contains("AWS_PROFILE=nope"), "{missing}");
    }

    #[test]
    fn credentials_may_live_in_the_config_file() {
        let home = tempfile::tempdir().unwrap();
        let config = home.path().join("conf");
        std::fs::write(&config, "[profile p]\naws_access_key_id = C\naws_secret_access_key = CS\n").unwrap();
        let s = S3Settings::from_env(
            env(&[("AWS_PROFILE", "p"), ("AWS_CONFIG_FILE", config.to_str().unwrap())]),
            Some(home.path()),
        )
        .unwrap();
        assert_eq!(s.credentials.key(), "C");
    }

    #[test]
    fn errors_carry_the_xml_code_and_know_what_to_retry() {
        let body =
            "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Please &amp; slow</Message></Error>";
        let err = S3Error::from_answer(503, body);
        assert!(
            matches!(&err, S3Error::Server { status: 503, code, message } if code == "SlowDown" && message == "Please & slow")
        );
        assert!(err.is_retryable());
        let denied = S3Error::from_answer(403, "<Error><Code>SignatureDoesNotMatch</Code></Error>");
        assert!(matches!(&denied, S3Error::AccessDenied { code, .. } if code == "SignatureDoesNotMatch"));
        assert!(!denied.is_retryable());
        assert!(!S3Error::from_answer(404, "<Error><Code>NoSuchBucket</Code></Error>").is_retryable());
        assert!(!S3Error::from_answer(400, "<Error><Code>InvalidPart</Code></Error>").is_retryable());
        assert!(
            S3Error::from_answer(409, "<Error><Code>ConditionalRequestConflict</Code></Error>")
                .is_retryable()
        );
        assert!(S3Error::Connection("refused".into()).is_retryable());
    }

    #[test]
    fn xml_texts_finds_every_occurrence() {
        let xml =
            "<R><Upload><Key>a&lt;b</Key><UploadId>1</UploadId></Upload><Upload><Key>c</Key></Upload></R>";
        assert_eq!(xml_texts(xml, "Key"), ["a<b", "c"]);
        assert_eq!(xml_text(xml, "Nope"), None);
    }
}
