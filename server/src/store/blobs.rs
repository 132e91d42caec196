//! Picture bytes in an S3-compatible object store (`--blobs s3://BUCKET?endpoint=URL`), with
//! the catalog in SQLite or PostgreSQL.
//!
//! Objects are named by content, `sha256/<64 hex digits>`, so a picture uploaded under two
//! names, or through two servers, is one object, and an object never changes once written.
//! An upload puts its object before the catalog names it; a picture replaced or deleted
//! leaves its object behind. Neither is ever deleted while serving: `picture-server
//! clean-blobs` deletes the objects no catalog entry names (see `Store::clean_blobs`), and an
//! upload makes sure, once committed, that its object is still there.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, PutPayload, RetryConfig};

/// Largest picture sent in one request; a larger one goes in parts of this size (S3's
/// smallest part but the last is 5 MiB).
pub const PART_SIZE: usize = 5 * 1024 * 1024;

/// Where objects' names start.
const PREFIX: &str = "sha256";

/// Times a failed request is tried again (within the timeout) before it is an error.
const RETRIES: usize = 2;

/// `s3://BUCKET?endpoint=URL&region=REGION`: the bucket, and where its service is (AWS
/// itself when no endpoint is given). Credentials come from the usual AWS environment
/// variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobsUrl {
    bucket: String,
    endpoint: Option<String>,
    region: Option<String>,
}

impl FromStr for BlobsUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
        if url.scheme() != "s3" {
            return Err(format!(
                "{s:?}: picture bytes go to s3://BUCKET?endpoint=URL&region=REGION"
            ));
        }
        let bucket = url.host_str().unwrap_or_default().to_owned();
        if bucket.len() < 3 || !url.path().trim_matches('/').is_empty() {
            return Err(format!(
                "{s:?} names no bucket (s3://BUCKET, 3 characters or more)"
            ));
        }
        let (mut endpoint, mut region) = (None, None);
        for (key, value) in url.query_pairs() {
            match &*key {
                "endpoint" => endpoint = Some(value.into_owned()),
                "region" => region = Some(value.into_owned()),
                other => {
                    return Err(format!(
                        "{s:?}: unknown setting {other:?} (endpoint, region)"
                    ));
                }
            }
        }
        Ok(BlobsUrl {
            bucket,
            endpoint,
            region,
        })
    }
}

impl fmt::Display for BlobsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}", self.bucket)?;
        let settings = [("endpoint", &self.endpoint), ("region", &self.region)];
        let mut separator = '?';
        for (key, value) in settings {
            if let Some(value) = value {
                write!(f, "{separator}{key}={value}")?;
                separator = '&';
            }
        }
        Ok(())
    }
}

/// An access key, for callers that do not take it from the environment.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, ***)", self.access_key_id)
    }
}

/// How the object store is reached.
#[derive(Debug, Clone)]
pub struct BlobSettings {
    /// The deadline of every request, retries included.
    pub timeout: Duration,
    /// `None`: from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    pub credentials: Option<Credentials>,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("object store {target}: {source}")]
    Store {
        target: String,
        source: object_store::Error,
    },
    #[error(
        "object store {target}: no credentials: set AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY ({source})"
    )]
    NoCredentials {
        target: String,
        source: object_store::Error,
    },
    #[error("object store {target} did not answer within {timeout:?}")]
    Timeout { target: String, timeout: Duration },
    #[error("object store {target}: {key} holds {found} bytes where {expected} were stored")]
    Damaged {
        target: String,
        key: String,
        found: u64,
        expected: usize,
    },
}

pub struct Bucket {
    store: AmazonS3,
    /// The URL, for messages.
    target: String,
    timeout: Duration,
}

impl Bucket {
    /// The bucket `url` names, once it answered.
    pub async fn open(url: &BlobsUrl, settings: &BlobSettings) -> Result<Bucket, BlobError> {
        let timeout = settings.timeout;
        let plain_http = url
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&url.bucket)
            .with_virtual_hosted_style_request(false)
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(timeout)
                    .with_connect_timeout(timeout)
                    .with_allow_http(plain_http),
            )
            .with_retry(RetryConfig {
                max_retries: RETRIES,
                retry_timeout: timeout,
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &url.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &url.region {
            builder = builder.with_region(region);
        }
        if let Some(credentials) = &settings.credentials {
            builder = builder
                .with_access_key_id(&credentials.access_key_id)
                .with_secret_access_key(&credentials.secret_access_key);
        }
        let target = url.to_string();
        let store = builder.build().map_err(|source| BlobError::Store {
            target: target.clone(),
            source,
        })?;
        let bucket = Bucket {
            store,
            target,
            timeout,
        };
        let anonymous = settings.credentials.is_none()
            && std::env::var_os("AWS_ACCESS_KEY_ID").is_none()
            && std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE").is_none();
        match bucket.ping().await {
            Ok(()) => Ok(bucket),
            // Without a key in the environment the client asks the cloud's instance metadata,
            // and its failure would not say what is missing.
            Err(BlobError::Store { target, source }) if anonymous => {
                Err(BlobError::NoCredentials { target, source })
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the store answers, with this bucket and these credentials: listing (the first
    /// page of) the bucket's objects fails when it does not, or when there is no such bucket.
    pub async fn ping(&self) -> Result<(), BlobError> {
        let prefix = Path::from(PREFIX);
        self.call(self.store.list_with_delimiter(Some(&prefix)))
            .await
            .map(drop)
    }

    /// The bytes of one content, `None` if there is no such object; an object of another
    /// length than `size` is an error.
    pub async fn get(&self, sha256: &[u8; 32], size: usize) -> Result<Option<Bytes>, BlobError> {
        let key = key(sha256);
        let read = self
            .call(async {
                match self.store.get(&key).await {
                    // Not read at all when it is not the size stored.
                    Ok(object) if object.meta.size != size as u64 => Ok(Err(object.meta.size)),
                    Ok(object) => object.bytes().await.map(|bytes| Ok(Some(bytes))),
                    Err(object_store::Error::NotFound { .. }) => Ok(Ok(None)),
                    Err(e) => Err(e),
                }
            })
            .await?;
        read.map_err(|found| BlobError::Damaged {
            target: self.target.clone(),
            key: key.to_string(),
            found,
            expected: size,
        })
    }

    /// Stores one content: in one request, or in parts of [`PART_SIZE`] when larger (an
    /// upload that fails part-way is aborted, leaving nothing).
    pub async fn put(&self, sha256: &[u8; 32], bytes: Bytes) -> Result<(), BlobError> {
        let key = key(sha256);
        if bytes.len() <= PART_SIZE {
            return self
                .call(async {
                    self.store
                        .put(&key, PutPayload::from(bytes))
                        .await
                        .map(drop)
                })
                .await;
        }
        let mut upload = self.call(self.store.put_multipart(&key)).await?;
        let mut sent = Ok(());
        for start in (0..bytes.len()).step_by(PART_SIZE) {
            let part = bytes.slice(start..bytes.len().min(start + PART_SIZE));
            sent = self.call(upload.put_part(PutPayload::from(part))).await;
            if sent.is_err() {
                break;
            }
        }
        if sent.is_ok() {
            sent = self.call(upload.complete()).await.map(drop);
        }
        if sent.is_err() {
            // What was sent is dropped by the store; an abort that fails leaves parts that the
            // bucket's lifecycle rules (or clean-blobs) remove.
            let _ = self.call(upload.abort()).await;
        }
        sent
    }

    /// Puts `bytes` again unless the object is there (after a commit, in case a clean-up
    /// removed it while the catalog did not yet name it).
    pub async fn ensure(&self, sha256: &[u8; 32], bytes: Bytes) -> Result<(), BlobError> {
        if self.exists(sha256).await? {
            Ok(())
        } else {
            self.put(sha256, bytes).await
        }
    }

    /// Whether the object of this content is there.
    pub async fn exists(&self, sha256: &[u8; 32]) -> Result<bool, BlobError> {
        Ok(self.written(sha256).await?.is_some())
    }

    /// When the object of this content was last written, if it is there.
    pub async fn written(&self, sha256: &[u8; 32]) -> Result<Option<SystemTime>, BlobError> {
        let key = key(sha256);
        self.call(async {
            match self.store.head(&key).await {
                Ok(meta) => Ok(Some(meta.last_modified.into())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// Every content's object, with when it was last written.
    pub async fn list(&self) -> Result<Vec<([u8; 32], SystemTime)>, BlobError> {
        let prefix = Path::from(PREFIX);
        let objects: Vec<_> = self
            .call(self.store.list(Some(&prefix)).try_collect::<Vec<_>>())
            .await?;
        Ok(objects
            .into_iter()
            .filter_map(|meta| Some((sha256_of(&meta.location)?, meta.last_modified.into())))
            .collect())
    }

    pub async fn delete(&self, sha256: &[u8; 32]) -> Result<(), BlobError> {
        let key = key(sha256);
        self.call(async {
            match self.store.delete(&key).await {
                Err(object_store::Error::NotFound { .. }) => Ok(()),
                other => other,
            }
        })
        .await
    }

    /// Runs one request under the deadline (retries are within it too).
    async fn call<T>(
        &self,
        request: impl Future<Output = object_store::Result<T>>,
    ) -> Result<T, BlobError> {
        // The client's own timeout bounds each attempt; this bounds them all, with room for
        // the client's timeout to say what happened first.
        let deadline = self.timeout * (RETRIES as u32 + 2);
        match tokio::time::timeout(deadline, request).await {
            Ok(Ok(done)) => Ok(done),
            Ok(Err(source)) => Err(BlobError::Store {
                target: self.target.clone(),
                source,
            }),
            Err(_) => Err(BlobError::Timeout {
                target: self.target.clone(),
                timeout: deadline,
            }),
        }
    }
}

/// The object name of a content.
fn key(sha256: &[u8; 32]) -> Path {
    let hex: String = sha256.iter().map(|b| format!("{b:02x}")).collect();
    Path::from(format!("{PREFIX}/{hex}"))
}

/// The content an object name names, if it is one of ours.
fn sha256_of(location: &Path) -> Option<[u8; 32]> {
    let hex = location.as_ref().strip_prefix(PREFIX)?.strip_prefix('/')?;
    if hex.len() != 64 {
        return None;
    }
    let mut sha256 = [0; 32];
    for (i, byte) in sha256.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(sha256)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_bucket_and_where_it_is() {
        let url: BlobsUrl = "s3://pictures?endpoint=http://127.0.0.1:8333&region=eu-west-1"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            url.to_string(),
            "s3://pictures?endpoint=http://127.0.0.1:8333&region=eu-west-1"
        );
        assert_eq!(
            "s3://pictures".parse::<BlobsUrl>().map(|u| u.to_string()),
            Ok("s3://pictures".into())
        );
        for bad in [
            "http://x/y",
            "s3://ab",
            "s3://pictures/sub",
            "s3://pictures?key=1",
        ] {
            assert!(bad.parse::<BlobsUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn object_names_go_back_to_their_content() {
        let sha256: [u8; 32] = std::array::from_fn(|i| i as u8 * 7);
        assert_eq!(sha256_of(&key(&sha256)), Some(sha256));
        assert_eq!(sha256_of(&Path::from("sha256/xyz")), None);
        assert_eq!(sha256_of(&Path::from("other/00")), None);
    }
}
