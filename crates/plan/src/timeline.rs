//! When did it go wrong: the catalog's writes over time, the bursts in
//! them, and the time a restore should go back to.
//!
//! A burst is a slot whose entries are more than [`BURST_FACTOR`] times the
//! location's usual rate — the median slot among those where anything was
//! written — and at least [`BURST_MINIMUM`]. The suggested time is the last
//! quiet second before the first burst: the burst's slot is looked at
//! second by second, and the burst begins at the first second holding more
//! entries than a usual slot does.

use catalog::{Catalog, Slot, TimelineFilter};

use crate::PlanError;

/// How far above the usual rate a slot must be to be called a burst.
pub const BURST_FACTOR: u64 = 5;
/// Fewer entries than this in a slot are never a burst.
pub const BURST_MINIMUM: u64 = 20;
/// Slot sizes chosen when none is asked for, smallest first.
const WIDTHS: [i64; 14] = [
    1, 5, 15, 30, 60, 300, 900, 1800, 3600, 10_800, 21_600, 43_200, 86_400, 604_800,
];
/// About this many slots when the size is chosen.
const SLOTS: i64 = 60;

/// Entries over time.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// Seconds per slot.
    pub width: i64,
    pub slots: Vec<Slot>,
    /// Entries in a usual slot (median of those with any).
    pub usual: u64,
    /// A slot with more entries than this is a burst.
    pub threshold: u64,
    /// Indexes in `slots` of the bursts.
    pub bursts: Vec<usize>,
    /// The last quiet second before the first burst.
    pub suggested: Option<i64>,
}

/// The timeline of the entries `filter` selects, in slots of `width`
/// seconds (chosen to give about sixty slots when `None`). `None` when no
/// entry is selected.
pub fn timeline(
    catalog: &Catalog,
    filter: &TimelineFilter<'_>,
    width: Option<i64>,
) -> Result<Option<Timeline>, PlanError> {
    let Some((first, last, _)) = catalog.time_span(filter)? else {
        return Ok(None);
    };
    let span = last - first + 1;
    let width = width.unwrap_or_else(|| {
        WIDTHS
            .into_iter()
            .find(|w| (span + w - 1) / w <= SLOTS)
            .unwrap_or(WIDTHS[WIDTHS.len() - 1])
    });
    // Slots start on a multiple of their size (whole minutes, hours…).
    let origin = first.div_euclid(width) * width;
    let slots = catalog.timeline(filter, origin, width)?;
    let (usual, threshold, bursts) = bursts(&slots);
    let suggested = match bursts.first() {
        Some(&i) => Some(onset(catalog, filter, &slots[i], width, usual)? - 1),
        None => None,
    };
    Ok(Some(Timeline {
        width,
        slots,
        usual,
        threshold,
        bursts,
        suggested,
    }))
}

/// The usual slot, the burst threshold, and the slots above it.
fn bursts(slots: &[Slot]) -> (u64, u64, Vec<usize>) {
    let mut busy: Vec<u64> = slots.iter().map(Slot::total).filter(|&n| n > 0).collect();
    busy.sort_unstable();
    let usual = busy
        .get(busy.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0);
    let threshold = (usual * BURST_FACTOR).max(BURST_MINIMUM);
    let over = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.total() > threshold)
        .map(|(i, _)| i)
        .collect();
    (usual, threshold, over)
}

/// The first second of `slot` holding more entries than a usual slot.
fn onset(
    catalog: &Catalog,
    filter: &TimelineFilter<'_>,
    slot: &Slot,
    width: i64,
    usual: u64,
) -> Result<i64, PlanError> {
    if width == 1 {
        return Ok(slot.start);
    }
    let inside = TimelineFilter {
        since: Some(slot.start),
        until: Some(slot.start + width - 1),
        ..*filter
    };
    let seconds = catalog.timeline(&inside, slot.start, 1)?;
    Ok(seconds
        .iter()
        .find(|s| s.total() > usual.max(1))
        .or_else(|| seconds.iter().find(|s| s.total() > 0))
        .map_or(slot.start, |s| s.start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(start: i64, writes: u64, overwrites: u64) -> Slot {
        Slot {
            start,
            writes,
            overwrites,
            deletes: 0,
        }
    }

    #[test]
    fn a_burst_is_far_above_the_usual_busy_slot() {
        // A write a minute, some quiet minutes, then 40 overwrites.
        let mut slots: Vec<Slot> = (0..30).map(|i| slot(i * 60, 1, 0)).collect();
        slots[7] = slot(7 * 60, 0, 0);
        slots.push(slot(30 * 60, 1, 40));
        let (usual, threshold, over) = bursts(&slots);
        assert_eq!((usual, threshold, over), (1, BURST_MINIMUM, vec![30]));

        // Steady work is no burst, however busy.
        let steady: Vec<Slot> = (0..30).map(|i| slot(i * 60, 500, 20)).collect();
        let (usual, threshold, over) = bursts(&steady);
        assert_eq!((usual, threshold), (520, 2_600));
        assert!(over.is_empty());

        // Nothing written: nothing stands out.
        assert_eq!(bursts(&[]), (0, BURST_MINIMUM, vec![]));
    }
}
