//! `plan`: turns a rule or a person's SQL into a named, reviewable `actions`
//! table in the catalog. Offline: nothing here touches the network.
//!
//! Rules are computed inside SQLite (window functions over each key's
//! entries in listing order), so a catalog of any size plans in bounded
//! memory. User-supplied SQL is compiled read-only (see [`readonly`]).

pub mod export;
pub mod readonly;
mod rules;
mod sqlrule;
mod store;
mod timeparse;

pub use rules::Rule;
pub use store::{
    create_plan, display, drop_plan, find_plan, list_plans, show_plan, ActionKind, Created,
    KindCount, PlanInfo, PlanReport, PlanRequest, StatusCounts,
};
pub use timeparse::{format_time, parse_duration, parse_time};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "{0:?} is not a time\n  hint: write RFC 3339 (2024-05-01T14:00:00Z, 2024-05-01T16:00:00+02:00) or YYYY-MM-DD[THH:MM:SS] in UTC"
    )]
    BadTime(String),
    #[error("{0:?} is not a duration\n  hint: write a number and a unit: 30d, 12h, 90m, 45s, 2w, or a sum such as 1d12h")]
    BadDuration(String),
    #[error("{what} is not valid SQL: {reason}")]
    BadSql { what: String, reason: String },
    #[error("{what} may only read the catalog, but it asks for {denied}; nothing was changed")]
    Denied { what: String, denied: String },
    #[error("row {row} of the query: {reason}; no plan was created")]
    BadRow { row: u64, reason: String },
    #[error("a plan named {0:?} exists already\n  hint: choose another --name, or `s3rewind plan drop {0}` first")]
    NameTaken(String),
    #[error("{0:?} is not a usable plan name: {1}")]
    BadName(String, &'static str),
    #[error("there is no plan named {0:?}\n  hint: `s3rewind plan list` shows the plans")]
    NoSuchPlan(String),
    #[error("the catalog holds no scan yet\n  hint: run `s3rewind scan s3://BUCKET` first")]
    NoScan,
    #[error(
        "the scan is unfinished ({done} of {total} prefixes done), so a plan would miss keys\n  hint: run `s3rewind scan` again to finish it (`s3rewind status` shows what is left)"
    )]
    ScanUnfinished { done: i64, total: i64 },
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    #[error("catalog: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
