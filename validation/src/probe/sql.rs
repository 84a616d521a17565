//! SQL probe: a query's first column of the first row equals an expected value or lies
//! within bounds.

use crate::ValidationError;
use sqlx::{Column, Row, TypeInfo};

#[derive(Debug, Clone)]
pub struct SqlProbe {
    pub dsn: String,
    pub query: String,
    pub expect: Expectation,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expectation {
    /// The query runs (any result).
    Succeeds,
    /// The value, compared as text (`t`/`f` for booleans, as PostgreSQL prints them).
    Equals(String),
    /// A numeric value within bounds, both inclusive.
    Between { min: Option<f64>, max: Option<f64> },
}

impl SqlProbe {
    pub async fn check(&self) -> Result<String, ValidationError> {
        let mut conn = crate::connect(&self.dsn).await?;
        let value = first_value(&mut conn, &self.query).await?;
        let shown = value.clone().unwrap_or_else(|| "NULL".into());
        match &self.expect {
            Expectation::Succeeds => Ok(format!("returned {shown}")),
            Expectation::Equals(expected) if value.as_deref() == Some(expected.as_str()) => Ok(format!("returned {shown}")),
            Expectation::Equals(expected) => Err(ValidationError::NotPassing(format!("returned {shown}, expected {expected}"))),
            Expectation::Between { min, max } => {
                let number: f64 = value
                    .as_deref()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| ValidationError::NotPassing(format!("returned {shown}, expected a number")))?;
                let low_ok = min.is_none_or(|m| number >= m);
                let high_ok = max.is_none_or(|m| number <= m);
                if low_ok && high_ok {
                    Ok(format!("returned {shown}"))
                } else {
                    Err(ValidationError::NotPassing(format!(
                        "returned {shown}, expected between {} and {}",
                        min.map_or("-inf".into(), |m| m.to_string()),
                        max.map_or("+inf".into(), |m| m.to_string())
                    )))
                }
            }
        }
    }
}

/// The first column of the first row as text, whatever its type (`None` for NULL or
/// no rows). Casting in SQL would make the caller rewrite their query; instead the
/// common types are decoded here.
pub async fn first_value(conn: &mut sqlx::PgConnection, query: &str) -> Result<Option<String>, ValidationError> {
    // The simple query protocol, so that a pooler in transaction mode (PgBouncer) cannot
    // hand the parse and the execution to different server connections.
    let row = sqlx::Executor::fetch_optional(&mut *conn, query).await.map_err(|e| match &e {
        sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("42")) => {
            ValidationError::Invalid(format!("the query failed: {db}; fix the query in the plan"))
        }
        _ => ValidationError::NotPassing(format!("the query failed: {e}")),
    })?;
    let Some(row) = row else { return Ok(None) };
    if row.columns().is_empty() {
        return Ok(None);
    }
    let type_name = row.column(0).type_info().name().to_owned();
    let text = match type_name.as_str() {
        "BOOL" => row
            .try_get::<Option<bool>, _>(0)
            .map(|v| v.map(|b| if b { "t" } else { "f" }.to_owned())),
        "INT2" => row.try_get::<Option<i16>, _>(0).map(|v| v.map(|n| n.to_string())),
        "INT4" => row.try_get::<Option<i32>, _>(0).map(|v| v.map(|n| n.to_string())),
        "INT8" => row.try_get::<Option<i64>, _>(0).map(|v| v.map(|n| n.to_string())),
        "FLOAT4" => row.try_get::<Option<f32>, _>(0).map(|v| v.map(|n| n.to_string())),
        "FLOAT8" => row.try_get::<Option<f64>, _>(0).map(|v| v.map(|n| n.to_string())),
        "TIMESTAMPTZ" => row
            .try_get::<Option<chrono::DateTime<chrono::Utc>>, _>(0)
            .map(|v| v.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))),
        _ => row.try_get::<Option<String>, _>(0),
    };
    text.map_err(|e| {
        ValidationError::Invalid(format!(
            "the query's first column has type {type_name}, which the probe cannot read ({e}); cast it, e.g. `select x::text`"
        ))
    })
}
