//! PostgreSQL connection strings as users paste them: the URL form
//! (`postgres://user@host:5432/db`) or libpq's keyword form
//! (`host=/var/run/postgresql port=5432 user=postgres dbname=app`). Both become the URL form,
//! which is what every part of lifeboat connects with.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

/// A DSN option: either form in the plan, the URL form once read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn(pub String);

impl<'de> Deserialize<'de> for Dsn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = super::Text::deserialize(d)?.0;
        to_url(&text).map(Dsn).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Dsn {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Dsn".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A PostgreSQL connection string: `postgres://user@host:port/db`, or libpq's `host=… port=… user=… dbname=…`.",
        })
    }
}

/// Libpq keywords and where they go in the URL; others are refused.
const QUERY_KEYWORDS: &[&str] = &["sslmode", "sslrootcert", "sslcert", "sslkey", "application_name", "options"];

/// The URL form of `dsn`, which may be either form.
pub fn to_url(dsn: &str) -> Result<String, String> {
    let trimmed = dsn.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        return Ok(trimmed.to_owned());
    }
    let pairs = keyword_pairs(trimmed)?;
    if pairs.is_empty() {
        return Err("empty connection string: write `postgres://user@host:port/db` or `host=… dbname=…`".into());
    }
    let mut url = url::Url::parse("postgres://localhost").map_err(|e| e.to_string())?;
    let mut query = Vec::new();
    let mut host_set = false;
    for (key, value) in pairs {
        match key.as_str() {
            "host" | "hostaddr" if value.starts_with('/') => query.push(("host".to_owned(), value)),
            "host" | "hostaddr" => {
                url.set_host(Some(&value)).map_err(|e| format!("host `{value}`: {e}"))?;
                host_set = true;
            }
            "port" => {
                let port: u16 = value
                    .parse()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| format!("port `{value}` is not a port number (1 to 65535)"))?;
                url.set_port(Some(port)).map_err(|()| format!("port `{value}` cannot be set"))?;
            }
            "user" => url.set_username(&value).map_err(|()| format!("user `{value}` cannot be set"))?,
            "password" => url.set_password(Some(&value)).map_err(|()| "password cannot be set".to_owned())?,
            // The path setter percent-encodes what a path cannot hold (spaces, `?`, `#`).
            "dbname" => url.set_path(&format!("/{}", value.replace('/', "%2F"))),
            k if QUERY_KEYWORDS.contains(&k) => query.push((k.to_owned(), value)),
            "connect_timeout" => {}
            other => {
                return Err(format!(
                    "connection keyword `{other}` is not supported; use host, hostaddr, port, user, password, dbname, {}",
                    QUERY_KEYWORDS.join(", ")
                ));
            }
        }
    }
    if !host_set && query.iter().all(|(k, _)| k != "host") {
        // libpq's default: the local socket.
        query.push(("host".to_owned(), "/var/run/postgresql".to_owned()));
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(url.to_string())
}

/// `key=value` pairs, values bare or single-quoted with `\` escapes, as libpq reads them.
fn keyword_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!(
                "`{text}` is not a connection string: expected `{key}=value`; write `postgres://user@host:port/db` or `host=… dbname=…`"
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.push(chars.next().ok_or("a quoted value ends in `\\`")?),
                    Some(c) => value.push(c),
                    None => return Err(format!("the quoted value of `{key}` is not closed with `'`")),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.push(chars.next().ok_or("a value ends in `\\`")?);
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::postgres::PgConnectOptions;
    use std::str::FromStr;

    #[test]
    fn the_keyword_form_becomes_a_url_sqlx_reads_the_same_way() {
        let url = to_url("host=/var/run/postgresql port=5433 user=postgres dbname=app").unwrap();
        let o = PgConnectOptions::from_str(&url).unwrap();
        assert_eq!(o.get_port(), 5433);
        assert_eq!(o.get_username(), "postgres");
        assert_eq!(o.get_database(), Some("app"));
        assert_eq!(o.get_socket(), Some(&std::path::PathBuf::from("/var/run/postgresql")));

        let url = to_url("host = db.example port=5432 user=ops password='it\\'s quoted' dbname='my db' sslmode=require").unwrap();
        let o = PgConnectOptions::from_str(&url).unwrap();
        assert_eq!(o.get_host(), "db.example");
        assert_eq!(o.get_database(), Some("my db"));
        assert!(url.contains("sslmode=require"), "{url}");
    }

    #[test]
    fn urls_pass_through_and_nonsense_is_explained() {
        assert_eq!(to_url("postgres://u@h:1/d").unwrap(), "postgres://u@h:1/d");
        assert!(to_url("just words").unwrap_err().contains("expected `just=value`"));
        assert!(to_url("port=0").unwrap_err().contains("not a port number"));
        assert!(to_url("tcp_keepalives=1").unwrap_err().contains("not supported"));
        assert!(to_url("dbname='open").unwrap_err().contains("not closed"));
    }
}
