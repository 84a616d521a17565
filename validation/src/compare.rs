//! Data consistency between two PostgreSQL databases: per table, the row count and an
//! order-independent checksum (the sum of each row's hash), optionally only up to a
//! cut-off so that "the source as of the restore target" can be compared with the
//! restored copy. Differing tables get a sample of differing primary keys.

use crate::ValidationError;
use crate::canary::quote_table;
use serde::Serialize;
use sqlx::{PgConnection, Row};
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct CompareOptions {
    pub source_dsn: String,
    pub target_dsn: String,
    /// Tables to compare; empty means every ordinary table of the source's `public` schema.
    pub tables: Vec<String>,
    pub cutoff: Option<Cutoff>,
    /// How many differing keys to list per table.
    pub sample: usize,
    /// Tables larger than this get counts and checksums but no key sample.
    pub sample_row_limit: i64,
}

/// Rows with `column <= value`; applied to the tables that have the column.
#[derive(Debug, Clone)]
pub struct Cutoff {
    pub column: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TableComparison {
    pub table: String,
    pub source_rows: Option<i64>,
    pub target_rows: Option<i64>,
    pub source_checksum: Option<String>,
    pub target_checksum: Option<String>,
    pub matches: bool,
    pub cutoff_applied: bool,
    /// Primary keys present on one side only or with different contents.
    pub differing_keys: Vec<String>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CompareReport {
    pub tables: Vec<TableComparison>,
    pub all_match: bool,
}

impl CompareReport {
    pub fn differing(&self) -> impl Iterator<Item = &TableComparison> {
        self.tables.iter().filter(|t| !t.matches)
    }
}

pub async fn compare(options: &CompareOptions) -> Result<CompareReport, ValidationError> {
    if let Some(c) = &options.cutoff {
        check_identifier(&c.column)?;
    }
    let mut source = crate::connect(&options.source_dsn).await?;
    let mut target = crate::connect(&options.target_dsn).await?;
    let tables = if options.tables.is_empty() {
        sqlx::query_scalar::<_, String>("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
            .fetch_all(&mut source)
            .await
            .map_err(ValidationError::db("listing the source's tables"))?
    } else {
        options.tables.clone()
    };
    let mut results = Vec::new();
    for table in &tables {
        results.push(compare_table(&mut source, &mut target, table, options).await?);
    }
    let all_match = results.iter().all(|t| t.matches);
    Ok(CompareReport {
        tables: results,
        all_match,
    })
}

async fn compare_table(
    source: &mut PgConnection,
    target: &mut PgConnection,
    table: &str,
    options: &CompareOptions,
) -> Result<TableComparison, ValidationError> {
    let quoted = quote_table(table)?;
    let cutoff = match &options.cutoff {
        Some(c) if has_column(source, table, &c.column).await? => {
            Some(format!("WHERE t.\"{}\" <= '{}'", c.column, c.value.replace('\'', "''")))
        }
        _ => None,
    };
    let filter = cutoff.clone().unwrap_or_default();
    let summary = format!(
        "SELECT count(*)::int8 AS n, coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::int8), 0)::text AS sum FROM {quoted} AS t {filter}"
    );
    let s = summarize(source, &summary, table, "source").await?;
    let t = summarize(target, &summary, table, "target").await?;
    let mut result = TableComparison {
        table: table.to_owned(),
        source_rows: s.as_ref().map(|x| x.0),
        target_rows: t.as_ref().map(|x| x.0),
        source_checksum: s.as_ref().map(|x| x.1.clone()),
        target_checksum: t.as_ref().map(|x| x.1.clone()),
        matches: s.is_some() && s == t,
        cutoff_applied: cutoff.is_some(),
        differing_keys: Vec::new(),
        note: None,
    };
    match (&s, &t) {
        (None, _) => result.note = Some("missing in the source".into()),
        (_, None) => result.note = Some("missing in the target".into()),
        (Some(a), Some(b)) if a != b => {
            if a.0.max(b.0) > options.sample_row_limit {
                result.note = Some(format!("more than {} rows: no key sample", options.sample_row_limit));
            } else {
                match primary_key(source, table).await? {
                    Some(pk) => result.differing_keys = differing_keys(source, target, &quoted, &pk, &filter, options.sample).await?,
                    None => result.note = Some("no primary key: no key sample".into()),
                }
            }
        }
        _ => {}
    }
    Ok(result)
}

async fn summarize(conn: &mut PgConnection, query: &str, table: &str, side: &str) -> Result<Option<(i64, String)>, ValidationError> {
    match sqlx::query(query).fetch_one(&mut *conn).await {
        Ok(row) => Ok(Some((
            row.try_get("n").map_err(ValidationError::db("reading a count"))?,
            row.try_get("sum").map_err(ValidationError::db("reading a checksum"))?,
        ))),
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P01") => Ok(None),
        Err(e) => Err(ValidationError::db(format!("summarizing {table} on the {side}"))(e)),
    }
}

async fn has_column(conn: &mut PgConnection, table: &str, column: &str) -> Result<bool, ValidationError> {
    sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = $2 AND attnum > 0 AND NOT attisdropped)",
    )
    .bind(table)
    .bind(column)
    .fetch_one(conn)
    .await
    .map_err(ValidationError::db(format!("looking up column {column} of {table}")))
}

async fn primary_key(conn: &mut PgConnection, table: &str) -> Result<Option<Vec<String>>, ValidationError> {
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
         WHERE i.indrelid = to_regclass($1) AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)",
    )
    .bind(table)
    .fetch_all(conn)
    .await
    .map_err(ValidationError::db(format!("looking up the primary key of {table}")))?;
    Ok((!columns.is_empty()).then_some(columns))
}

async fn differing_keys(
    source: &mut PgConnection,
    target: &mut PgConnection,
    quoted: &str,
    pk: &[String],
    filter: &str,
    limit: usize,
) -> Result<Vec<String>, ValidationError> {
    let key = pk
        .iter()
        .map(|c| format!("t.\"{c}\"::text"))
        .collect::<Vec<_>>()
        .join(" || ',' || ");
    let query = format!("SELECT {key} AS k, md5(t::text) AS h FROM {quoted} AS t {filter}");
    let a = row_hashes(source, &query).await?;
    let b = row_hashes(target, &query).await?;
    let mut keys: Vec<String> = a.iter().filter(|(k, h)| b.get(*k) != Some(h)).map(|(k, _)| k.clone()).collect();
    keys.extend(b.keys().filter(|k| !a.contains_key(*k)).cloned());
    keys.sort();
    keys.truncate(limit);
    Ok(keys)
}

async fn row_hashes(conn: &mut PgConnection, query: &str) -> Result<BTreeMap<String, String>, ValidationError> {
    sqlx::query(query)
        .fetch_all(conn)
        .await
        .map_err(ValidationError::db("reading row hashes"))?
        .iter()
        .map(|r| Ok((r.try_get::<String, _>("k")?, r.try_get::<String, _>("h")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(ValidationError::db("reading row hashes"))
}

fn check_identifier(name: &str) -> Result<(), ValidationError> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        Ok(())
    } else {
        Err(ValidationError::Invalid(format!(
            "invalid column name `{name}`: use lower-case letters, digits and `_`"
        )))
    }
}
