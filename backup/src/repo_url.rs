//! Repository URLs: `file:///path` or `s3://bucket/prefix?endpoint=…&region=…`.

use std::path::PathBuf;

use url::Url;

use crate::error::{BackupError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoUrl {
    Local { root: PathBuf },
    S3(S3Location),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Key prefix without leading or trailing slash; may be empty.
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Path-style addressing; the default whenever an endpoint is given, since most
    /// S3-compatible servers on a single host do not resolve virtual-host bucket names.
    pub path_style: bool,
    /// Objects larger than this go up in multipart uploads.
    pub multipart_threshold: usize,
    pub multipart_chunk: usize,
}

pub const DEFAULT_MULTIPART_THRESHOLD: usize = 32 * 1024 * 1024;
const MIN_MULTIPART_CHUNK: usize = 5 * 1024 * 1024;

impl RepoUrl {
    pub fn parse(text: &str) -> Result<RepoUrl> {
        let help = "use file:///absolute/path or s3://bucket/prefix?endpoint=http://host:port&region=NAME";
        let url = Url::parse(text).map_err(|e| BackupError::invalid(format!("repository URL `{text}`: {e}; {help}")))?;
        match url.scheme() {
            "file" => {
                if url.host_str().is_some_and(|h| !h.is_empty()) {
                    return Err(BackupError::invalid(format!(
                        "repository URL `{text}`: file URLs need three slashes and an absolute path (file:///var/lib/lifeboat/repo)"
                    )));
                }
                let root = url
                    .to_file_path()
                    .map_err(|_| BackupError::invalid(format!("repository URL `{text}`: not a usable local path; {help}")))?;
                Ok(RepoUrl::Local { root })
            }
            "s3" => {
                let bucket = url.host_str().filter(|b| !b.is_empty()).ok_or_else(|| {
                    BackupError::invalid(format!("repository URL `{text}`: the bucket name is missing (s3://BUCKET/prefix)"))
                })?;
                let mut location = S3Location {
                    bucket: bucket.to_string(),
                    prefix: url.path().trim_matches('/').to_string(),
                    endpoint: None,
                    region: None,
                    path_style: false,
                    multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
                    multipart_chunk: 8 * 1024 * 1024,
                };
                let mut path_style = None;
                for (key, value) in url.query_pairs() {
                    match key.as_ref() {
                        "endpoint" => location.endpoint = Some(value.into_owned()),
                        "region" => location.region = Some(value.into_owned()),
                        "path_style" => path_style = Some(parse_bool(text, &key, &value)?),
                        "multipart_threshold" => location.multipart_threshold = parse_size(text, &key, &value)?,
                        "multipart_chunk" => location.multipart_chunk = parse_size(text, &key, &value)?.max(MIN_MULTIPART_CHUNK),
                        other => {
                            return Err(BackupError::invalid(format!(
                                "repository URL `{text}`: unknown parameter `{other}`; known: endpoint, region, path_style, multipart_threshold, multipart_chunk"
                            )));
                        }
                    }
                }
                location.path_style = path_style.unwrap_or(location.endpoint.is_some());
                Ok(RepoUrl::S3(location))
            }
            other => Err(BackupError::invalid(format!(
                "repository URL `{text}`: unsupported scheme `{other}`; {help}"
            ))),
        }
    }
}

impl std::fmt::Display for RepoUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RepoUrl::Local { root } => write!(f, "file://{}", root.display()),
            RepoUrl::S3(s3) => {
                write!(f, "s3://{}/{}", s3.bucket, s3.prefix)?;
                if let Some(endpoint) = &s3.endpoint {
                    write!(f, " at {endpoint}")?;
                }
                Ok(())
            }
        }
    }
}

fn parse_bool(url: &str, key: &str, value: &str) -> Result<bool> {
    match value {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(BackupError::invalid(format!(
            "repository URL `{url}`: `{key}={value}` must be true or false"
        ))),
    }
}

fn parse_size(url: &str, key: &str, value: &str) -> Result<usize> {
    let (digits, unit) = value.split_at(value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len()));
    let multiplier = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1024,
        "m" | "mib" => 1024 * 1024,
        "g" | "gib" => 1024 * 1024 * 1024,
        _ => 0,
    };
    digits
        .parse::<usize>()
        .ok()
        .filter(|_| multiplier > 0)
        .map(|n| n * multiplier)
        .ok_or_else(|| BackupError::invalid(format!("repository URL `{url}`: `{key}={value}` must be a size like 8MiB")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        assert_eq!(
            RepoUrl::parse("file:///var/lib/repo").unwrap(),
            RepoUrl::Local {
                root: "/var/lib/repo".into()
            }
        );
        let RepoUrl::S3(s3) =
            RepoUrl::parse("s3://bkt/a/b/?endpoint=http://127.0.0.1:3900&region=garage&multipart_threshold=6MiB").unwrap()
        else {
            panic!("expected s3")
        };
        assert_eq!(
            (s3.bucket.as_str(), s3.prefix.as_str(), s3.region.as_deref()),
            ("bkt", "a/b", Some("garage"))
        );
        assert!(s3.path_style);
        assert_eq!(s3.multipart_threshold, 6 * 1024 * 1024);
    }

    #[test]
    fn rejects_bad_urls_with_help() {
        for bad in [
            "ftp://x/y",
            "s3:///prefix",
            "file://host/path",
            "s3://b/p?colour=red",
            "s3://b/p?multipart_threshold=lots",
        ] {
            let message = RepoUrl::parse(bad).unwrap_err().to_string();
            assert!(message.contains(bad), "{message}");
        }
    }
}
