//! `plan`: turns a rule or a person's SQL into a named, reviewable set of
//! actions in the catalog. Offline: nothing here touches the network.
//!
//! Every built-in rule decides per key, from that key's history alone
//! ([`rules`]): the catalog streams the histories in its stored order, so a
//! catalog of any size plans in bounded memory, and each rule is a plain
//! function tested without a catalog. A person's SQL is run read-only by
//! the catalog and every row it returns is checked ([`user`]).
//!
//! # Layout
//!
//! - [`rules`]: restore, undelete and expire, one module each.
//! - `user`: the checks on each row of `plan sql`.
//! - `make`: [`create_plan`], the steps from request to stored plan.
//! - `already`: copies back a restore needs no more (the key holds the
//!   content already).
//! - `report`: [`show_plan`], what a plan will do and cost.
//! - `destination`: [`check_destination`], where `--into` may write.
//! - [`export`]: a plan's actions as CSV, or as an S3 Batch Operations manifest.
//! - [`timeline`]: writes over time, their bursts, and the time to restore to.
//! - [`undo`]: the inverse of an applied plan, from what apply recorded.

mod already;
mod destination;
pub mod export;
mod make;
mod report;
pub mod rules;
pub mod timeline;
pub mod undo;
mod user;

pub use catalog::plans::{KindCount, PlanInfo, StatusCounts};
pub use destination::check_destination;
pub use make::{create_plan, Created, PlanRequest};
pub use model::ActionKind;
pub use report::{destination_of, find_plan, show_plan, PlanReport};
pub use rules::Rule;
pub use timeline::{timeline, Timeline};

/// Why a plan could not be made, shown, or written out.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Time(#[from] model::time::TimeError),
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
    #[error(
        "{to} is before the oldest entry in the catalog ({oldest}): at that time no key existed, so the plan would hide every key\n  hint: check --to (its time zone, its year); if hiding every key is what you want, add --allow-before-data"
    )]
    BeforeAnyData { to: String, oldest: String },
    #[error("plan {0:?} was never applied: there is nothing to undo")]
    NeverApplied(String),
    #[error("plan {name:?} has {in_flight} actions in flight from an apply that was stopped: what they did is not known yet\n  hint: `s3rewind apply {name} --settle` finds out what became of them without starting anything new; then undo")]
    UndoInFlight { name: String, in_flight: u64 },
    #[error("plan {0:?} was made from an earlier scan of this catalog (`scan --fresh` started a new one)\n  hint: undo is made from the scan the plan was applied to")]
    OtherScan(String),
    #[error(
        "--into {into} overlaps the scanned location {scanned}, and keys may be there {why}: the copies could land on keys the plan reads or restores\n  hint: choose another bucket, or a prefix of this one that holds no key yet (e.g. s3://BUCKET/restored/)"
    )]
    IntoOverlaps {
        into: String,
        scanned: String,
        why: String,
    },
    #[error(
        "--into {into}: the scanned base has no trailing /, and keys go on from it both with / ({a:?}) and without ({b:?}): two keys would land on one destination key\n  hint: scan (or plan) with a base ending in /, or restore the two kinds in two plans with --where"
    )]
    IntoCollides { into: String, a: String, b: String },
    #[error(transparent)]
    Catalog(#[from] catalog::CatalogError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
