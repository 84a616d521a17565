//! The `Authorization` check for the Alertmanager receiver: a bearer token or basic credentials.
//!
//! Alertmanager's `webhook_config.http_config` sends `Authorization: Bearer <credentials>` (its
//! `authorization` block, whose `type` defaults to Bearer) or `Authorization: Basic
//! base64(<username>:<password>)` (its `basic_auth` block). The scheme is matched without regard to
//! case, as HTTP auth schemes are. Tokens and passwords are compared in constant time (as SHA-256
//! digests, so that not even their length leaks), and are never written into an error.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use super::WebhookError;

/// The credentials the receiver expects.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Bearer(String),
    Basic { username: String, password: String },
}

impl std::fmt::Debug for Credentials {
    /// Shows the kind and the username, never the token or password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Credentials::Basic { username, .. } => write!(f, "Basic {{ username: {username:?}, password: <redacted> }}"),
        }
    }
}

const BEARER_HINT: &str = "set the token in Alertmanager's webhook_config http_config.authorization.credentials (type \
                           Bearer), the same token this receiver has";
const BASIC_HINT: &str = "set the username and password in Alertmanager's webhook_config http_config.basic_auth, the same \
                          ones this receiver has";

/// Checks the request's `Authorization` header (`None` if absent) against the expected credentials.
pub fn check_authorization(expected: &Credentials, authorization_header: Option<&str>) -> Result<(), WebhookError> {
    let (scheme, hint) = match expected {
        Credentials::Bearer(token) => {
            if token.is_empty() {
                return Err(WebhookError::NotConfigured { what: "bearer token" });
            }
            ("Bearer", BEARER_HINT)
        }
        Credentials::Basic { password, .. } => {
            if password.is_empty() {
                return Err(WebhookError::NotConfigured {
                    what: "basic auth password",
                });
            }
            ("Basic", BASIC_HINT)
        }
    };
    let header = authorization_header.map(str::trim).filter(|h| !h.is_empty());
    let header = header.ok_or(WebhookError::MissingAuthorization { hint })?;
    let (presented_scheme, rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
    if !presented_scheme.eq_ignore_ascii_case(scheme) {
        return Err(WebhookError::WrongAuthScheme { expected: scheme, hint });
    }
    let rest = rest.trim();
    match expected {
        Credentials::Bearer(token) => {
            if rest.is_empty() {
                return Err(WebhookError::MalformedAuthorization {
                    scheme,
                    reason: "no token follows the scheme",
                });
            }
            if !constant_time_eq(rest.as_bytes(), token.as_bytes()) {
                return Err(WebhookError::BadCredentials { scheme, hint });
            }
        }
        Credentials::Basic { username, password } => {
            let decoded = STANDARD.decode(rest).map_err(|_| WebhookError::MalformedAuthorization {
                scheme,
                reason: "they are not base64 of username:password",
            })?;
            let colon = decoded
                .iter()
                .position(|&b| b == b':')
                .ok_or(WebhookError::MalformedAuthorization {
                    scheme,
                    reason: "the decoded value has no ':' between username and password",
                })?;
            let (user, pass) = (&decoded[..colon], &decoded[colon + 1..]);
            // Both are compared, always, so the time taken does not tell which one was wrong.
            let user_ok = constant_time_eq(user, username.as_bytes());
            let pass_ok = constant_time_eq(pass, password.as_bytes());
            if !(user_ok & pass_ok) {
                return Err(WebhookError::BadCredentials { scheme, hint });
            }
        }
    }
    Ok(())
}

/// Compares two secrets in constant time: their SHA-256 digests, byte by byte, without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (da, db) = (Sha256::digest(a), Sha256::digest(b));
    let diff = da.iter().zip(db.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, pass: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")))
    }

    #[test]
    fn bearer_accepts_the_right_token_in_any_scheme_case() {
        let expected = Credentials::Bearer("s3cr3t-token".into());
        check_authorization(&expected, Some("Bearer s3cr3t-token")).unwrap();
        check_authorization(&expected, Some("bearer   s3cr3t-token ")).unwrap();
    }

    #[test]
    fn bearer_refuses_a_wrong_token_without_echoing_it() {
        let expected = Credentials::Bearer("s3cr3t-token".into());
        let err = check_authorization(&expected, Some("Bearer guessed-token")).unwrap_err();
        assert!(matches!(err, WebhookError::BadCredentials { scheme: "Bearer", .. }), "{err:?}");
        assert_eq!(err.status(), 401);
        let text = err.to_string();
        assert!(!text.contains("guessed-token") && !text.contains("s3cr3t"), "{text}");
        assert!(text.contains("http_config.authorization"), "{text}");
        // A prefix of the token is not the token.
        assert!(check_authorization(&expected, Some("Bearer s3cr3t")).is_err());
        assert!(matches!(
            check_authorization(&expected, Some("Bearer")).unwrap_err(),
            WebhookError::MalformedAuthorization { .. }
        ));
    }

    #[test]
    fn bearer_refuses_a_missing_header_or_the_wrong_scheme() {
        let expected = Credentials::Bearer("s3cr3t-token".into());
        let err = check_authorization(&expected, None).unwrap_err();
        assert!(matches!(err, WebhookError::MissingAuthorization { .. }));
        assert_eq!(err.status(), 401);
        assert!(matches!(
            check_authorization(&expected, Some("  ")).unwrap_err(),
            WebhookError::MissingAuthorization { .. }
        ));

        let err = check_authorization(&expected, Some(&basic("alertmanager", "s3cr3t-token"))).unwrap_err();
        assert!(matches!(err, WebhookError::WrongAuthScheme { expected: "Bearer", .. }), "{err:?}");
        assert_eq!(err.status(), 401);
        // A bare token with no scheme is the wrong scheme, and is not echoed.
        let err = check_authorization(&expected, Some("s3cr3t-token")).unwrap_err();
        assert!(matches!(err, WebhookError::WrongAuthScheme { .. }));
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }

    #[test]
    fn basic_accepts_the_right_credentials() {
        let expected = Credentials::Basic {
            username: "alertmanager".into(),
            password: "pa:ss w0rd".into(),
        };
        // A password may contain ':' and spaces; only the first ':' separates.
        check_authorization(&expected, Some(&basic("alertmanager", "pa:ss w0rd"))).unwrap();
        check_authorization(&expected, Some(&basic("alertmanager", "pa:ss w0rd").replacen("Basic", "BASIC", 1))).unwrap();
    }

    #[test]
    fn basic_refuses_wrong_password_wrong_user_wrong_scheme_missing_header() {
        let expected = Credentials::Basic {
            username: "alertmanager".into(),
            password: "correct horse".into(),
        };
        let err = check_authorization(&expected, Some(&basic("alertmanager", "wrong horse"))).unwrap_err();
        assert!(matches!(err, WebhookError::BadCredentials { scheme: "Basic", .. }), "{err:?}");
        let text = err.to_string();
        assert!(!text.contains("horse"), "{text}");
        assert!(text.contains("basic_auth"), "{text}");

        let err = check_authorization(&expected, Some(&basic("mallory", "correct horse"))).unwrap_err();
        assert!(matches!(err, WebhookError::BadCredentials { .. }));

        let err = check_authorization(&expected, Some("Bearer correct horse")).unwrap_err();
        assert!(matches!(err, WebhookError::WrongAuthScheme { expected: "Basic", .. }), "{err:?}");

        let err = check_authorization(&expected, None).unwrap_err();
        assert!(matches!(err, WebhookError::MissingAuthorization { .. }));
        assert_eq!(err.status(), 401);
    }

    #[test]
    fn basic_refuses_malformed_values() {
        let expected = Credentials::Basic {
            username: "u".into(),
            password: "p".into(),
        };
        let err = check_authorization(&expected, Some("Basic not*base64")).unwrap_err();
        assert!(matches!(err, WebhookError::MalformedAuthorization { .. }), "{err:?}");
        assert_eq!(err.status(), 401);
        let no_colon = format!("Basic {}", STANDARD.encode("up"));
        assert!(matches!(
            check_authorization(&expected, Some(&no_colon)).unwrap_err(),
            WebhookError::MalformedAuthorization { .. }
        ));
    }

    #[test]
    fn empty_expected_credentials_are_a_configuration_error() {
        let err = check_authorization(&Credentials::Bearer(String::new()), Some("Bearer ")).unwrap_err();
        assert!(matches!(err, WebhookError::NotConfigured { .. }));
        assert_eq!(err.status(), 500);
        let basic_empty = Credentials::Basic {
            username: "u".into(),
            password: String::new(),
        };
        assert!(check_authorization(&basic_empty, Some(&basic("u", ""))).is_err());
    }

    #[test]
    fn debug_redacts_secrets() {
        let text = format!(
            "{:?}",
            Credentials::Basic {
                username: "am".into(),
                password: "hunter2".into()
            }
        );
        assert!(text.contains("am") && !text.contains("hunter2"), "{text}");
        assert!(!format!("{:?}", Credentials::Bearer("tok123".into())).contains("tok123"));
    }
}
