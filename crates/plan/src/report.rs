//! What a plan will do and cost, for `plan show`, `apply` and `status`.

use catalog::plans::{KindCount, PlanInfo};
use catalog::Catalog;
use model::limits::Estimate;
use model::ActionKind;

use crate::PlanError;

/// What `plan show` prints.
#[derive(Debug, Clone)]
pub struct PlanReport {
    pub info: PlanInfo,
    pub kinds: Vec<KindCount>,
    pub keys: u64,
    /// Requests and dollars at S3 list prices.
    pub estimate: Estimate,
    /// The first actions, as (column, value) of `plan_review`.
    pub sample: Vec<Vec<(String, String)>>,
    /// Its keys that changed since it was made (an apply of another plan,
    /// keys listed again): its actions were computed from before.
    pub stale: catalog::Staleness,
}

/// Sample rows shown by `plan show`.
const SHOWN: usize = 10;

/// Where a plan's actions land when not on the scanned keys
/// (`plan restore --into`, and the undo of such a plan).
pub fn destination_of(info: &PlanInfo) -> Option<model::Destination> {
    let parameters: serde_json::Value = serde_json::from_str(&info.parameters).ok()?;
    model::Destination::parse(parameters["into"].as_str()?).ok()
}

pub fn find_plan(catalog: &Catalog, name: &str) -> Result<PlanInfo, PlanError> {
    catalog
        .plans()?
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| PlanError::NoSuchPlan(name.to_owned()))
}

pub fn show_plan(catalog: &Catalog, name: &str) -> Result<PlanReport, PlanError> {
    let info = find_plan(catalog, name)?;
    let figures = catalog.plan_figures(info.id, SHOWN)?;
    let count = |k: ActionKind| {
        figures
            .kinds
            .iter()
            .find(|c| c.kind == k)
            .map_or(0, |c| c.actions)
    };
    let estimate = model::limits::estimate(
        count(ActionKind::DeleteVersion) + count(ActionKind::DeleteMarker),
        count(ActionKind::AddDeleteMarker),
        count(ActionKind::CopyVersion),
        &figures.large_copy_sizes,
    );
    let stale = catalog.staleness(info.id, false)?;
    Ok(PlanReport {
        stale,
        info,
        kinds: figures.kinds,
        keys: figures.keys,
        estimate,
        sample: figures.sample,
    })
}
