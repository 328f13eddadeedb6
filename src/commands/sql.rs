//! `s3rewind sql`: read-only queries on the catalog.

use catalog::rusqlite::types::Value;
use catalog::{user_sql, Catalog};

use crate::cli::{GlobalArgs, SqlArgs};
use crate::output::print_table;
use crate::{exit, CliError};

pub async fn run(global: &GlobalArgs, args: SqlArgs) -> Result<u8, CliError> {
    let catalog = Catalog::open(&global.catalog).await?;
    let query = args.query.trim();
    // Refused before anything happens: a query that writes changes nothing.
    user_sql::prepare(catalog.conn(), query, "the query")?;
    // Review queries join on key names. Not while another command writes
    // the catalog (the query then runs without the index).
    if let Ok(_lock) = catalog::WorkLock::take(&global.catalog, "sql") {
        if let Ok(true) = catalog.index_keys() {
            eprintln!("(indexed the catalog's key names for joins; done once)");
        }
    }
    let conn = catalog.conn();
    // Belt and braces: the authorizer refuses writes at compile time, and
    // query_only refuses them at run time.
    conn.pragma_update(None, "query_only", true)
        .map_err(catalog::CatalogError::from)?;
    let mut stmt = user_sql::prepare(conn, query, "the query")?;
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let mut rows = stmt.raw_query();
    let mut next = || -> Result<Option<Vec<Value>>, CliError> {
        match rows.next() {
            Ok(Some(r)) => Ok(Some(
                (0..names.len())
                    .map(|i| r.get::<_, Value>(i))
                    .collect::<Result<_, _>>()
                    .map_err(catalog::CatalogError::from)?,
            )),
            Ok(None) => Ok(None),
            Err(e) => Err(user_sql::run_error("the query", &e).into()),
        }
    };
    if args.csv {
        let mut w = csv::Writer::from_writer(std::io::stdout().lock());
        w.write_record(&names).map_err(std::io::Error::other)?;
        while let Some(row) = next()? {
            w.write_record(row.into_iter().map(user_sql::display))
                .map_err(std::io::Error::other)?;
        }
        w.flush()?;
    } else if args.json {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        write!(out, "[")?;
        let mut first = true;
        while let Some(row) = next()? {
            let object: serde_json::Map<String, serde_json::Value> = names
                .iter()
                .cloned()
                .zip(row.into_iter().map(json))
                .collect();
            write!(
                out,
                "{}\n  {}",
                if first { "" } else { "," },
                serde_json::Value::Object(object)
            )?;
            first = false;
        }
        writeln!(out, "{}]", if first { "" } else { "\n" })?;
    } else {
        let mut table = Vec::new();
        while let Some(row) = next()? {
            table.push(row.into_iter().map(user_sql::display).collect());
        }
        print_table(&names, &table);
        eprintln!(
            "({} row{})",
            table.len(),
            if table.len() == 1 { "" } else { "s" }
        );
    }
    Ok(exit::OK)
}

fn json(v: Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Integer(i) => i.into(),
        Value::Real(f) => {
            serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::Text(t) => t.into(),
        Value::Blob(b) => b
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
            .into(),
    }
}
