//! The experts' findings per clip, as labels: A-lines, B-lines,
//! consolidation, an abnormal pleural line, white lung, effusion and air
//! bronchograms.
//!
//! Each finding is `Some(true)`, `Some(false)` or `None` (unknown). Unknown
//! stays unknown: a clip whose comment does not mention a finding is not a
//! "no" for it.
//!
//! * **BLUES**: A-lines and B-lines come from their yes/no columns. The other
//!   findings come from the free-text `comments` by [`from_comment`]: the
//!   comment is cut into clauses at `,` `;` `.`; a clause that names a
//!   finding makes it present, unless the clause negates it ("no", "not",
//!   "without", "absent", "none"; for the pleura also "intact", "regular",
//!   "continuous", "smooth", "normal", which make it absent) or hedges it
//!   ("?", "possible", "suspected", "maybe", "probable"), which leaves it
//!   unknown. Present wins over absent when clauses disagree.
//! * **POCUS**: the `1`/`0` columns of `labels.csv`
//!   (`pleural_irregularities` is `pleura_abnormal`).

/// One clip's expert findings; `None` where the experts did not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Findings {
    /// Horizontal reverberations of a normal pleura.
    pub a_lines: Option<bool>,
    /// Vertical artifacts from the pleura down.
    pub b_lines: Option<bool>,
    /// Subpleural consolidation, small or large.
    pub consolidation: Option<bool>,
    /// A broken, interrupted, irregular, thickened or indented pleural line.
    pub pleura_abnormal: Option<bool>,
    /// Confluent B-lines filling the sector.
    pub white_lung: Option<bool>,
    /// Pleural or subpleural effusion.
    pub effusion: Option<bool>,
    /// Air bronchograms inside a consolidation.
    pub air_bronchogram: Option<bool>,
}

/// Every finding's name, as in the labels and in `pleura eval`'s JSON.
pub const FINDING_NAMES: [&str; 7] = [
    "a_lines",
    "b_lines",
    "consolidation",
    "pleura_abnormal",
    "white_lung",
    "effusion",
    "air_bronchogram",
];

impl Findings {
    /// The label of a finding by name (see [`FINDING_NAMES`]).
    pub fn get(&self, name: &str) -> Option<bool> {
        match name {
            "a_lines" => self.a_lines,
            "b_lines" => self.b_lines,
            "consolidation" => self.consolidation,
            "pleura_abnormal" => self.pleura_abnormal,
            "white_lung" => self.white_lung,
            "effusion" => self.effusion,
            "air_bronchogram" => self.air_bronchogram,
            _ => None,
        }
    }
}

/// The findings a free-text BLUES comment states: consolidation,
/// pleura_abnormal, white_lung and effusion (A- and B-lines have their own
/// columns and stay `None` here).
pub fn from_comment(comment: &str) -> Findings {
    let mut findings = Findings::default();
    let lower = comment.to_lowercase();
    for clause in lower.split([',', ';', '.']) {
        let words: Vec<&str> = clause
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let starts = |stems: &[&str]| words.iter().any(|w| stems.iter().any(|s| w.starts_with(s)));
        let is = |set: &[&str]| words.iter().any(|w| set.contains(w));
        if clause.contains('?') || starts(&["possib", "suspect", "maybe", "probabl"]) {
            continue;
        }
        let negated = is(&["no", "not", "without", "absent", "none"]);
        let present = !negated;
        if starts(&["consolid"]) {
            mark(&mut findings.consolidation, present);
        }
        if starts(&["effusion"]) {
            mark(&mut findings.effusion, present);
        }
        if clause.contains("white lung") {
            mark(&mut findings.white_lung, present);
        }
        let pleura = starts(&["pleura"]);
        // "intended" is how one BLUES comment spells "indented".
        let abnormal = starts(&[
            "broken",
            "interrupt",
            "irregular",
            "thicken",
            "indent",
            "intended",
            "fragment",
            "discontinu",
            "ragged",
        ]);
        let normal = is(&["intact", "regular", "continuous", "smooth", "normal"]);
        if pleura && (abnormal || normal) {
            mark(&mut findings.pleura_abnormal, present && abnormal);
        }
    }
    findings
}

/// Records one clause's verdict: present wins over absent.
fn mark(slot: &mut Option<bool>, present: bool) {
    *slot = Some(slot.unwrap_or(false) || present);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(comment: &str, name: &str) -> Option<bool> {
        from_comment(comment).get(name)
    }

    #[test]
    fn a_named_finding_is_present() {
        let f = from_comment("broken pleura line, small consolidated areas, B-lines");
        assert_eq!(f.consolidation, Some(true));
        assert_eq!(f.pleura_abnormal, Some(true));
        assert_eq!(f.effusion, None);
        assert_eq!(
            finding("subpleural consolidation, subpleural effusion", "effusion"),
            Some(true)
        );
    }

    #[test]
    fn every_abnormal_pleura_word_counts_including_the_datas_typo() {
        for comment in [
            "interrupted pleura line",
            "Pleura line thickened",
            "pleura line intended",
            "indented pleura",
            "irregular pleural line",
        ] {
            assert_eq!(finding(comment, "pleura_abnormal"), Some(true), "{comment}");
        }
    }

    #[test]
    fn an_intact_or_regular_pleura_is_a_no_and_irregular_is_not_regular() {
        assert_eq!(
            finding("pleura line intact", "pleura_abnormal"),
            Some(false)
        );
        assert_eq!(
            finding("regular pleura, A-lines", "pleura_abnormal"),
            Some(false)
        );
        assert_eq!(finding("irregular pleura", "pleura_abnormal"), Some(true));
    }

    #[test]
    fn negation_applies_to_its_own_clause_only() {
        let f = from_comment(
            "no single B-lines, B-lines are fused together into the picture of a white lung",
        );
        assert_eq!(f.white_lung, Some(true));
        assert_eq!(finding("no consolidation", "consolidation"), Some(false));
        assert_eq!(
            finding(
                "pleura line intact, little subpleural consolidations",
                "consolidation"
            ),
            Some(true)
        );
        assert_eq!(
            finding(
                "pleura line intact, little subpleural consolidations",
                "pleura_abnormal"
            ),
            Some(false)
        );
    }

    #[test]
    fn a_hedged_finding_stays_unknown() {
        assert_eq!(finding("white lung?", "white_lung"), None);
        assert_eq!(
            finding("possible little subpleural consolidation", "consolidation"),
            None
        );
    }

    #[test]
    fn a_missing_or_unrelated_comment_is_unknown_not_no() {
        assert_eq!(from_comment(""), Findings::default());
        assert_eq!(
            from_comment("mostly liver in the video"),
            Findings::default()
        );
        assert_eq!(finding("multiple B-lines", "consolidation"), None);
    }
}
