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
    /// Where its copies land when not on the scanned keys (`--into`), and
    /// the scanned base its keys are mapped from.
    pub into: Option<(model::Destination, String)>,
    /// Restore: keys left alone because their newest version already
    /// holds the content of the version of T, by how that was known.
    pub already: Vec<(model::content::KnownBy, u64)>,
}

impl PlanReport {
    /// Keys already as at T.
    pub fn already_keys(&self) -> u64 {
        self.already.iter().map(|(_, n)| n).sum()
    }
}

impl PlanReport {
    /// Where the action on scanned `key` lands: `s3://bucket/key`.
    pub fn lands_at(&self, key: &str) -> Option<String> {
        self.into
            .as_ref()
            .map(|(d, base)| format!("s3://{}/{}", d.bucket, d.key_for(base, key)))
    }
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
    let into = match (destination_of(&info), catalog.scan_record()?) {
        (Some(d), Some(scan)) => Some((d, scan.location.base_prefix)),
        _ => None,
    };
    let mut report = PlanReport {
        stale,
        info,
        kinds: figures.kinds,
        keys: figures.keys,
        estimate,
        sample: figures.sample,
        into,
        already: figures.already,
    };
    // The sample shows where each action lands too.
    if report.into.is_some() {
        let mut sample = std::mem::take(&mut report.sample);
        for row in &mut sample {
            let lands = row
                .iter()
                .find(|(column, _)| column == "key")
                .and_then(|(_, key)| report.lands_at(key));
            if let Some(lands) = lands {
                row.push(("lands_at".into(), lands));
            }
        }
        report.sample = sample;
    }
    Ok(report)
}
