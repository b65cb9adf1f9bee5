//! Cloud object stores (S3 and S3-compatible, and, untested, GCS and Azure)
//! through `object_store`.
//!
//! The trait is synchronous; this backend owns one small tokio runtime shared
//! by every cloud backend in the process and blocks on it, so callers must not
//! be inside a tokio runtime themselves (the engine and CLI never are).
//! Requests are retried with exponential backoff and jitter by
//! `object_store`'s client (transient HTTP errors, timeouts, connection
//! resets); every request has a timeout. Objects are written with
//! `PutMode::Create`, so an existing object is never replaced; objects larger
//! than [`MULTIPART_THRESHOLD`] are uploaded in parts, after checking that
//! they do not exist yet (multipart uploads cannot be conditional).
//!
//! Configuration comes from the standard environment: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` /
//! `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`),
//! `AWS_ALLOW_HTTP=true` for plain-HTTP endpoints, web-identity and container
//! credentials, and the instance metadata service.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjPath;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
};

use crate::backend::Backend;
use crate::error::{Result, StoreError, StoreErrorKind};
use crate::handle::{FileType, Handle};

/// Objects above this size are uploaded in parts.
pub const MULTIPART_THRESHOLD: usize = 64 * 1024 * 1024;
const PART_SIZE: usize = 16 * 1024 * 1024;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("vault-store-io")
            .enable_all()
            .build()
            .expect("a tokio runtime for cloud storage")
    })
}

/// TLS for the HTTP client: rustls with the ring provider (no C build of
/// aws-lc). Must happen before any client is built.
fn install_tls() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        // Fails only if another provider is already installed, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Retries, backoff and timeouts shared by every cloud backend.
fn client_settings() -> (ClientOptions, RetryConfig) {
    let client = ClientOptions::new()
        .with_timeout(Duration::from_secs(120))
        .with_connect_timeout(Duration::from_secs(10));
    let mut retry = RetryConfig {
        max_retries: 8,
        retry_timeout: Duration::from_secs(120),
        ..Default::default()
    };
    retry.backoff.init_backoff = Duration::from_millis(100);
    retry.backoff.max_backoff = Duration::from_secs(10);
    (client, retry)
}

/// A repository in a bucket (and optional prefix).
pub struct CloudBackend {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    url: String,
    service: &'static str,
    endpoint: String,
}

impl fmt::Debug for CloudBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CloudBackend({})", self.url)
    }
}

impl CloudBackend {
    /// Opens `s3://bucket/prefix`, `gs://bucket/prefix` or `az://container/prefix`
    /// with settings from the environment. Nothing is contacted yet.
    pub fn from_url(url: &str) -> Result<CloudBackend> {
        Self::from_url_with(url, &[])
    }

    /// As [`CloudBackend::from_url`], with extra settings (`object_store`
    /// config keys such as `aws_endpoint`, `aws_allow_http`) applied over the
    /// environment's. Tests use it to reach a local server.
    /// Two keys are vault's own: `vault_max_retries` and `vault_retry_timeout_secs`.
    pub fn from_url_with(url: &str, settings: &[(&str, &str)]) -> Result<CloudBackend> {
        install_tls();
        let (client, mut retry) = client_settings();
        let own = |k: &str| {
            settings
                .iter()
                .find(|(key, _)| *key == k)
                .and_then(|(_, v)| v.parse::<u64>().ok())
        };
        if let Some(n) = own("vault_max_retries") {
            retry.max_retries = n as usize;
        }
        if let Some(n) = own("vault_retry_timeout_secs") {
            retry.retry_timeout = Duration::from_secs(n);
        }
        let settings: Vec<(&str, &str)> = settings
            .iter()
            .filter(|(k, _)| !k.starts_with("vault_"))
            .copied()
            .collect();
        let endpoint = settings
            .iter()
            .find(|(k, _)| matches!(*k, "aws_endpoint" | "aws_endpoint_url" | "endpoint"))
            .map(|(_, v)| v.to_string())
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT").ok())
            .unwrap_or_else(|| "the default endpoint".into());
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid(url, "expected scheme://bucket/prefix"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid(url, "the bucket name is missing"));
        }
        let (store, service): (Arc<dyn ObjectStore>, &'static str) =
            match scheme.to_ascii_lowercase().as_str() {
                "s3" => {
                    // Client options first: the environment and settings (AWS_ALLOW_HTTP
                    // among them) are applied on top of them, not replaced by them.
                    let mut b = object_store::aws::AmazonS3Builder::new()
                        .with_client_options(client)
                        .with_retry(retry);
                    let env: Vec<(String, String)> = std::env::vars()
                        .filter(|(k, _)| k.starts_with("AWS_"))
                        .collect();
                    for (k, v) in &env {
                        if let Ok(key) = k.to_ascii_lowercase().parse() {
                            b = b.with_config(key, v);
                        }
                    }
                    for (k, v) in &settings {
                        b = b.with_config(k.parse().map_err(|e| config_error(url, "S3", e))?, *v);
                    }
                    let s3 = b
                        .with_bucket_name(bucket)
                        .build()
                        .map_err(|e| config_error(url, "S3", e))?;
                    (Arc::new(s3), "S3")
                }
                "gs" => (
                    Arc::new(
                        object_store::gcp::GoogleCloudStorageBuilder::from_env()
                            .with_bucket_name(bucket)
                            .with_client_options(client)
                            .with_retry(retry)
                            .build()
                            .map_err(|e| config_error(url, "GCS", e))?,
                    ),
                    "GCS",
                ),
                "az" => (
                    Arc::new(
                        object_store::azure::MicrosoftAzureBuilder::from_env()
                            .with_container_name(bucket)
                            .with_client_options(client)
                            .with_retry(retry)
                            .build()
                            .map_err(|e| config_error(url, "Azure", e))?,
                    ),
                    "Azure",
                ),
                other => return Err(invalid(url, &format!("unknown scheme `{other}`"))),
            };
        Ok(CloudBackend {
            store,
            prefix: prefix.trim_matches('/').to_owned(),
            url: url.trim_end_matches('/').to_owned(),
            service,
            endpoint,
        })
    }

    fn path(&self, h: &Handle) -> ObjPath {
        self.join(&h.path())
    }

    fn join(&self, rel: &str) -> ObjPath {
        if self.prefix.is_empty() {
            ObjPath::from(rel)
        } else {
            ObjPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        runtime().block_on(f)
    }

    fn map(&self, op: &str, what: &str, e: object_store::Error) -> StoreError {
        use object_store::Error as E;
        let (kind, hint) = match &e {
            E::NotFound { .. } => (StoreErrorKind::NotFound, ""),
            E::AlreadyExists { .. } | E::Precondition { .. } => (StoreErrorKind::AlreadyExists, ""),
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => (
                StoreErrorKind::PermissionDenied,
                " (check the credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, or the bucket policy)",
            ),
            E::NotSupported { .. } | E::NotImplemented { .. } => (StoreErrorKind::Unsupported, ""),
            _ => (StoreErrorKind::Other, ""),
        };
        let text = one_line(&e.to_string());
        let hint = if kind == StoreErrorKind::Other && looks_unreachable(&text) {
            " (the endpoint did not answer after retries: check AWS_ENDPOINT_URL and the network)"
        } else {
            hint
        };
        StoreError::new(
            kind,
            format!(
                "cannot {op} {what} in {} ({} endpoint {}): {text}{hint}",
                self.url, self.service, self.endpoint
            ),
        )
        .with_source(e)
    }
}

/// Error texts of S3 carry an XML body; keep one line with its code and message.
fn one_line(text: &str) -> String {
    let field = |tag: &str| {
        let open = format!("<{tag}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{tag}>"))? + start;
        Some(text[start..end].to_owned())
    };
    let head = text
        .split("<?xml")
        .next()
        .unwrap_or(text)
        .trim_end()
        .trim_end_matches(':');
    let head = head.replace('\n', " ");
    match (field("Code"), field("Message")) {
        (Some(c), Some(m)) => format!("{head}: {c}: {m}"),
        (Some(c), None) => format!("{head}: {c}"),
        _ => head,
    }
}

fn looks_unreachable(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "connect",
        "timed out",
        "timeout",
        "dns",
        "connection refused",
        "error sending request",
    ]
    .iter()
    .any(|k| t.contains(k))
}

fn invalid(url: &str, why: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::InvalidName,
        format!("invalid repository URL `{url}`: {why}"),
    )
}

fn config_error(url: &str, service: &str, e: object_store::Error) -> StoreError {
    StoreError::new(
        StoreErrorKind::Other,
        format!("cannot configure {service} for `{url}`: {e}"),
    )
    .with_source(e)
}

impl Backend for CloudBackend {
    fn location(&self) -> String {
        self.url.clone()
    }

    fn init_layout(&self) -> Result<()> {
        // Object stores have no directories; check the bucket answers.
        let probe = self.join("config");
        match self.block(self.store.head(&probe)) {
            Ok(_) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.map("reach", "the bucket", e)),
        }
    }

    fn create(&self, handle: &Handle, data: Bytes) -> Result<()> {
        let path = self.path(handle);
        if data.len() > MULTIPART_THRESHOLD {
            if self.size(handle).is_ok() {
                return Err(StoreError::new(
                    StoreErrorKind::AlreadyExists,
                    format!("cannot create {handle} in {}: it already exists", self.url),
                ));
            }
            return self
                .block(async {
                    let mut upload = self.store.put_multipart(&path).await?;
                    for part in data.chunks(PART_SIZE) {
                        upload
                            .put_part(PutPayload::from(data.slice_ref(part)))
                            .await?;
                    }
                    upload.complete().await.map(|_| ())
                })
                .map_err(|e| self.map("create", &handle.to_string(), e));
        }
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        self.block(self.store.put_opts(&path, PutPayload::from(data), opts))
            .map(|_| ())
            .map_err(|e| self.map("create", &handle.to_string(), e))
    }

    fn read(&self, handle: &Handle) -> Result<Bytes> {
        let path = self.path(handle);
        self.block(async { self.store.get(&path).await?.bytes().await })
            .map_err(|e| self.map("read", &handle.to_string(), e))
    }

    fn read_range(&self, handle: &Handle, offset: u64, length: u64) -> Result<Bytes> {
        let short = |end: u64, detail: String| {
            StoreError::new(
                StoreErrorKind::Truncated,
                format!(
                    "{handle} in {} is shorter than {end} bytes{detail}",
                    self.url
                ),
            )
        };
        let end = offset
            .checked_add(length)
            .ok_or_else(|| short(u64::MAX, String::new()))?;
        if length == 0 {
            let size = self.size(handle)?;
            return if offset > size {
                Err(short(end, String::new()))
            } else {
                Ok(Bytes::new())
            };
        }
        let path = self.path(handle);
        let bytes = self
            .block(self.store.get_range(&path, offset..end))
            .map_err(|e| {
                let text = e.to_string();
                if text.contains("416")
                    || text.to_ascii_lowercase().contains("range")
                        && !matches!(e, object_store::Error::NotFound { .. })
                {
                    short(end, format!(": {text}"))
                } else {
                    self.map("read", &handle.to_string(), e)
                }
            })?;
        if bytes.len() as u64 != length {
            return Err(short(end, format!(" (got {} of {length})", bytes.len())));
        }
        Ok(bytes)
    }

    fn size(&self, handle: &Handle) -> Result<u64> {
        let path = self.path(handle);
        self.block(self.store.head(&path))
            .map(|m| m.size)
            .map_err(|e| self.map("stat", &handle.to_string(), e))
    }

    fn list(&self, kind: FileType) -> Result<Vec<(String, u64)>> {
        let dir = self.join(kind.dir());
        let metas: Vec<object_store::ObjectMeta> = self
            .block(self.store.list(Some(&dir)).try_collect())
            .map_err(|e| self.map("list", kind.dir(), e))?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let name = m.location.filename()?.to_owned();
                Handle::new(kind, name.clone()).ok().map(|_| (name, m.size))
            })
            .collect())
    }

    fn delete(&self, handle: &Handle) -> Result<()> {
        let path = self.path(handle);
        match self.block(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.map("delete", &handle.to_string(), e)),
        }
    }
}
