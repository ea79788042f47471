//! The zones a run of `pleura run --exam` declared in its log, and their
//! check against the exam journal it left (shared by the kill test and the
//! power-cut test).
//!
//! The bedside logs `recorded zone N (NAME) of exam ROOT: score S` once a
//! zone's journal line is fsynced, before the screen shows it, and
//! `cleared zone N (NAME) of exam ROOT` when a zone is cleared to be
//! redone. The last word on each zone is what the journal must hold.

use pleura::exam::Journal;
use std::collections::BTreeMap;
use std::path::Path;

/// One zone a run declared recorded (with its score) or cleared.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Declared {
    root: String,
    zone: usize,
    score: Option<u8>,
}

/// What a run's log declares of each zone it touched, in order: recorded
/// with a score, or cleared to be redone (`None`). The last word counts.
fn declared(log: &str) -> BTreeMap<(String, usize), Option<u8>> {
    let mut zones = BTreeMap::new();
    for line in log.lines() {
        let (rest, recorded) = match (
            line.split("recorded zone ").nth(1),
            line.split("cleared zone ").nth(1),
        ) {
            (Some(rest), _) => (rest, true),
            (None, Some(rest)) => (rest, false),
            (None, None) => continue,
        };
        let parse = || -> Option<Declared> {
            let (zone, rest) = rest.split_once(' ')?;
            let rest = rest.split_once(" of exam ")?.1;
            let (root, score) = if recorded {
                let (root, score) = rest.split_once(": score ")?;
                (root, Some(score.trim().parse().ok()?))
            } else {
                (rest.trim(), None)
            };
            Some(Declared {
                root: root.to_string(),
                zone: zone.parse().ok()?,
                score,
            })
        };
        if let Some(d) = parse() {
            zones.insert((d.root, d.zone), d.score);
        }
    }
    zones
}

/// What [`verify`] found.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Zones whose last word was a recording.
    pub declared: usize,
    /// Zones whose last word was a clearing.
    pub cleared: usize,
    /// One line per zone the journal does not hold as declared.
    pub lost: Vec<String>,
}

/// Checks every zone `log` declares against `journal` (and the journals
/// set aside beside it).
pub fn verify(log: &str, journal: &Path) -> Verdict {
    let mut verdict = Verdict::default();
    for ((root, zone), score) in declared(log) {
        if score.is_some() {
            verdict.declared += 1;
        } else {
            verdict.cleared += 1;
        }
        let kept = match Journal::find(journal, &root) {
            Ok(Some(exam)) => exam
                .zones
                .get(zone)
                .and_then(|z| z.as_ref())
                .map(|z| z.score),
            Ok(None) => None,
            Err(e) => {
                verdict
                    .lost
                    .push(format!("the journal does not replay: {e}"));
                continue;
            }
        };
        if kept != score {
            verdict.lost.push(format!(
                "zone {zone} of exam {root} was declared {score:?}; the journal has {kept:?}"
            ));
        }
    }
    verdict
}
