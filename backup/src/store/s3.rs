//! S3-compatible backend through aws-sdk-s3: endpoint override, path-style addressing,
//! credentials from the usual AWS chain (environment first), multipart uploads for large
//! objects, and the SDK's standard retry with backoff on retryable failures.

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::{ObjectInfo, ObjectMeta, ObjectStore, SHA256, sha256_hex, verify};
use crate::error::{BackupError, Result};
use crate::repo_url::S3Location;

const PARALLEL_PARTS: usize = 4;

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    location: S3Location,
}

/// The CA bundle variable the AWS CLI and SDKs honour, for endpoints with a private CA
/// (an on-premises S3 or a TLS terminator in front of one).
pub const CA_BUNDLE_VAR: &str = "AWS_CA_BUNDLE";

/// The system's roots, plus the PEM certificates in `AWS_CA_BUNDLE` when it is set.
fn tls_context() -> Result<TlsContext> {
    let mut trust = TrustStore::default();
    if let Some(path) = std::env::var_os(CA_BUNDLE_VAR).filter(|p| !p.is_empty()) {
        let pem = std::fs::read(&path).map_err(|e| {
            BackupError::invalid(format!(
                "{CA_BUNDLE_VAR}={}: {e}; point it at a readable PEM file of CA certificates, or unset it",
                std::path::Path::new(&path).display()
            ))
        })?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(BackupError::invalid(format!(
                "{CA_BUNDLE_VAR}={} holds no PEM certificate (no `-----BEGIN CERTIFICATE-----`)",
                std::path::Path::new(&path).display()
            )));
        }
        trust = trust.with_pem_certificate(pem);
    }
    TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| BackupError::invalid(format!("TLS settings for S3: {e}")))
}

impl S3Store {
    pub async fn connect(location: S3Location) -> Result<S3Store> {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .tls_context(tls_context()?)
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
        if let Some(region) = &location.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let shared = loader.load().await;
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(location.path_style)
            // Object integrity is ours (SHA-256 in metadata); the SDK's optional CRC trailers are
            // not understood by every S3-compatible server.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .retry_config(RetryConfig::standard().with_max_attempts(4))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(300))
                    .build(),
            );
        if shared.region().is_none() {
            config = config.region(Region::new("us-east-1"));
        }
        if let Some(endpoint) = &location.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Ok(S3Store {
            client: Client::from_conf(config.build()),
            location,
        })
    }

    fn full_key(&self, key: &str) -> String {
        if self.location.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.location.prefix)
        }
    }

    fn relative_key<'a>(&self, full: &'a str) -> &'a str {
        if self.location.prefix.is_empty() {
            full
        } else {
            full.strip_prefix(&self.location.prefix)
                .map(|k| k.trim_start_matches('/'))
                .unwrap_or(full)
        }
    }

    async fn put_multipart(&self, key: &str, body: Bytes, meta: &ObjectMeta) -> Result<()> {
        let full = self.full_key(key);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.location.bucket)
            .key(&full)
            .set_metadata(Some(meta.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| store_error("create multipart upload", key, e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let chunk = self.location.multipart_chunk;
        let uploads = (0..body.len().div_ceil(chunk)).map(|i| {
            let part = body.slice(i * chunk..((i + 1) * chunk).min(body.len()));
            let (client, bucket, full, upload_id) = (self.client.clone(), self.location.bucket.clone(), full.clone(), upload_id.clone());
            async move {
                let number = i as i32 + 1;
                let out = client
                    .upload_part()
                    .bucket(bucket)
                    .key(full)
                    .upload_id(upload_id)
                    .part_number(number)
                    .body(ByteStream::from(part))
                    .send()
                    .await
                    .map_err(|e| store_error("upload part", key, e))?;
                Ok::<_, BackupError>(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag().map(str::to_string))
                        .build(),
                )
            }
        });
        let parts: Result<Vec<CompletedPart>> = futures::stream::iter(uploads).buffered(PARALLEL_PARTS).try_collect().await;
        let completed = match parts {
            Ok(parts) => self
                .client
                .complete_multipart_upload()
                .bucket(&self.location.bucket)
                .key(&full)
                .upload_id(&upload_id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                .send()
                .await
                .map_err(|e| store_error("complete multipart upload", key, e))
                .map(drop),
            Err(e) => Err(e),
        };
        if completed.is_err() {
            // Best effort: the server would otherwise keep the parts until its own lifecycle rule.
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.location.bucket)
                .key(&full)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        completed
    }
}

fn status_of<E, R: HttpStatus>(error: &SdkError<E, R>) -> Option<u16> {
    error.raw_response().map(HttpStatus::status_code)
}

trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

fn store_error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    op: &'static str,
    key: &str,
    error: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> BackupError {
    let status = status_of(&error);
    let code = error.code().unwrap_or_default().to_string();
    let (message, retryable) = match (&error, status) {
        (SdkError::DispatchFailure(_), _) | (SdkError::TimeoutError(_), _) => (
            format!(
                "endpoint unreachable ({}); check the endpoint in the repository URL and that the server is up",
                DisplayErrorContext(&error)
            ),
            true,
        ),
        (_, Some(403)) => (
            format!("access denied ({code}); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the key's permissions on the bucket"),
            false,
        ),
        (_, Some(404)) if code == "NoSuchBucket" => ("the bucket does not exist; create it or fix the repository URL".to_string(), false),
        (_, Some(status)) if status >= 500 || status == 429 => (format!("server error {status} {code}"), true),
        _ => (DisplayErrorContext(&error).to_string(), false),
    };
    BackupError::Store {
        op,
        key: key.to_string(),
        message,
        retryable,
    }
}

fn is_not_found<E, R: HttpStatus>(error: &SdkError<E, R>) -> bool {
    status_of(error) == Some(404)
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, body: Bytes, mut meta: ObjectMeta) -> Result<()> {
        meta.insert(SHA256.to_string(), sha256_hex(&body));
        if body.len() > self.location.multipart_threshold {
            return self.put_multipart(key, body, &meta).await;
        }
        self.client
            .put_object()
            .bucket(&self.location.bucket)
            .key(self.full_key(key))
            .set_metadata(Some(meta.into_iter().collect()))
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| store_error("put", key, e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<(Bytes, ObjectMeta)>> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.location.bucket)
            .key(self.full_key(key))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if is_not_found(&e) && e.code() != Some("NoSuchBucket") => return Ok(None),
            Err(e) => return Err(store_error("get", key, e)),
        };
        let meta: ObjectMeta = out.metadata().cloned().unwrap_or_default().into_iter().collect();
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| BackupError::Store {
                op: "get",
                key: key.to_string(),
                message: format!("reading body: {e}"),
                retryable: true,
            })?
            .into_bytes();
        verify(key, &body, &meta)?;
        Ok(Some((body, meta)))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        match self
            .client
            .head_object()
            .bucket(&self.location.bucket)
            .key(self.full_key(key))
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.metadata().cloned().unwrap_or_default().into_iter().collect())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(store_error("head", key, e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.location.bucket)
            .prefix(self.full_key(prefix))
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| store_error("list", prefix, e))?;
            for object in page.contents() {
                let Some(full) = object.key() else { continue };
                out.push(ObjectInfo {
                    key: self.relative_key(full).to_string(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                    modified: object
                        .last_modified()
                        .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.client
            .delete_object()
            .bucket(&self.location.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|e| store_error("delete", key, e))?;
        Ok(())
    }
}
