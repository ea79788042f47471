//! Agreement metrics between expert and predicted ordinal scores.
//!
//! Definitions follow scikit-learn, so the numbers can be compared with the
//! training script's cross-validation and with published results:
//! F1 per class with 0 where a class is never predicted and never true,
//! quadratic-weighted Cohen's kappa, and ROC AUC as the Mann–Whitney
//! probability with ties counted half.

/// A `k × k` confusion matrix, rows = truth, columns = prediction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Confusion(pub Vec<Vec<u64>>);

impl Confusion {
    /// Counts `(truth, prediction)` pairs over `k` classes (labels ≥ k are ignored).
    pub fn new(pairs: &[(u8, u8)], k: usize) -> Self {
        let mut m = vec![vec![0u64; k]; k];
        for &(t, p) in pairs {
            if (t as usize) < k && (p as usize) < k {
                m[t as usize][p as usize] += 1;
            }
        }
        Self(m)
    }

    fn k(&self) -> usize {
        self.0.len()
    }

    fn total(&self) -> u64 {
        self.0.iter().flatten().sum()
    }

    fn row(&self, i: usize) -> u64 {
        self.0[i].iter().sum()
    }

    fn col(&self, j: usize) -> u64 {
        self.0.iter().map(|r| r[j]).sum()
    }

    /// Fraction of exact agreements.
    pub fn accuracy(&self) -> f64 {
        let hits: u64 = (0..self.k()).map(|i| self.0[i][i]).sum();
        ratio(hits as f64, self.total() as f64)
    }

    /// F1 of each class.
    pub fn f1_per_class(&self) -> Vec<f64> {
        (0..self.k())
            .map(|i| {
                let tp = self.0[i][i] as f64;
                ratio(2.0 * tp, (self.row(i) + self.col(i)) as f64)
            })
            .collect()
    }

    /// Unweighted mean of the per-class F1 over the classes present in
    /// truth or prediction.
    pub fn macro_f1(&self) -> f64 {
        let f1 = self.f1_per_class();
        let present: Vec<f64> = (0..self.k())
            .filter(|&i| self.row(i) + self.col(i) > 0)
            .map(|i| f1[i])
            .collect();
        ratio(present.iter().sum(), present.len() as f64)
    }

    /// Per-class F1 weighted by each class's true count.
    pub fn weighted_f1(&self) -> f64 {
        let f1 = self.f1_per_class();
        let sum: f64 = (0..self.k()).map(|i| f1[i] * self.row(i) as f64).sum();
        ratio(sum, self.total() as f64)
    }

    /// Quadratic-weighted Cohen's kappa.
    pub fn quadratic_kappa(&self) -> f64 {
        let k = self.k();
        let n = self.total() as f64;
        if n == 0.0 || k < 2 {
            return 0.0;
        }
        let (mut observed, mut expected) = (0.0, 0.0);
        for i in 0..k {
            for j in 0..k {
                let w = ((i as f64 - j as f64) / (k as f64 - 1.0)).powi(2);
                observed += w * self.0[i][j] as f64;
                expected += w * self.row(i) as f64 * self.col(j) as f64 / n;
            }
        }
        if expected == 0.0 {
            1.0
        } else {
            1.0 - observed / expected
        }
    }

    /// Mean absolute difference between truth and prediction.
    pub fn mae(&self) -> f64 {
        let k = self.k();
        let sum: f64 = (0..k)
            .flat_map(|i| (0..k).map(move |j| (i, j)))
            .map(|(i, j)| (i as f64 - j as f64).abs() * self.0[i][j] as f64)
            .sum();
        ratio(sum, self.total() as f64)
    }
}

/// Area under the ROC curve of `scores` for `labels` (true = positive), or
/// `None` when one class is absent.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let pos: Vec<f64> = scores
        .iter()
        .zip(labels)
        .filter(|(_, l)| **l)
        .map(|(s, _)| *s)
        .collect();
    let neg: Vec<f64> = scores
        .iter()
        .zip(labels)
        .filter(|(_, l)| !**l)
        .map(|(s, _)| *s)
        .collect();
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    let wins: f64 = pos
        .iter()
        .flat_map(|p| neg.iter().map(move |n| (p, n)))
        .map(|(p, n)| {
            if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            }
        })
        .sum();
    Some(wins / (pos.len() * neg.len()) as f64)
}

/// The `q` quantile (0–1) of sorted values, interpolating linearly between
/// neighbours as numpy does by default; `None` for no values.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let h = last as f64 * q.clamp(0.0, 1.0);
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (h - lo as f64))
}

fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 { 0.0 } else { num / den }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// truth:      0 0 1 1 2 3
    /// prediction: 0 1 1 1 3 3
    fn example() -> Confusion {
        Confusion::new(&[(0, 0), (0, 1), (1, 1), (1, 1), (2, 3), (3, 3)], 4)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn accuracy_counts_exact_agreement() {
        assert!(close(example().accuracy(), 4.0 / 6.0));
    }

    #[test]
    fn f1_matches_hand_computation() {
        // class 0: tp 1, row 2, col 1 → 2/3; class 1: tp 2, row 2, col 3 → 4/5;
        // class 2: 0; class 3: tp 1, row 1, col 2 → 2/3.
        let f1 = example().f1_per_class();
        assert!(
            close(f1[0], 2.0 / 3.0)
                && close(f1[1], 0.8)
                && close(f1[2], 0.0)
                && close(f1[3], 2.0 / 3.0)
        );
        assert!(close(
            example().macro_f1(),
            (2.0 / 3.0 + 0.8 + 0.0 + 2.0 / 3.0) / 4.0
        ));
        assert!(close(
            example().weighted_f1(),
            (2.0 * 2.0 / 3.0 + 2.0 * 0.8 + 0.0 + 2.0 / 3.0) / 6.0
        ));
    }

    #[test]
    fn quadratic_kappa_matches_hand_computation() {
        // Weights w_ij = ((i-j)/3)²; observed Σw·O = (1 + 1)/9 = 2/9.
        // Rows 2,2,1,1; cols 1,3,0,2; expected E_ij = row_i·col_j/6.
        let rows = [2.0, 2.0, 1.0, 1.0];
        let cols = [1.0, 3.0, 0.0, 2.0];
        let mut expected = 0.0;
        for (i, row) in rows.iter().enumerate() {
            for (j, col) in cols.iter().enumerate() {
                expected += ((i as f64 - j as f64) / 3.0).powi(2) * row * col / 6.0;
            }
        }
        let want = 1.0 - (2.0 / 9.0) / expected;
        assert!(close(example().quadratic_kappa(), want));
    }

    #[test]
    fn perfect_agreement_has_kappa_one_and_mae_zero() {
        let c = Confusion::new(&[(0, 0), (1, 1), (2, 2), (3, 3)], 4);
        assert!(close(c.quadratic_kappa(), 1.0));
        assert!(close(c.mae(), 0.0));
        assert!(close(c.macro_f1(), 1.0));
    }

    #[test]
    fn mae_is_the_mean_score_distance() {
        assert!(close(example().mae(), 2.0 / 6.0));
    }

    #[test]
    fn auc_counts_ties_as_half() {
        let auc = roc_auc(&[0.9, 0.5, 0.5, 0.1], &[true, true, false, false]).unwrap();
        // pairs: (0.9>0.5) (0.9>0.1) (0.5=0.5 → ½) (0.5>0.1) → 3.5/4
        assert!(close(auc, 0.875));
        assert_eq!(roc_auc(&[0.1], &[true]), None);
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [0.0, 0.1, 0.2, 0.5, 1.0];
        assert!(close(quantile(&v, 0.5).unwrap(), 0.2));
        // numpy.percentile([0, .1, .2, .5, 1], 90) = 0.8
        assert!(close(quantile(&v, 0.9).unwrap(), 0.8));
        assert_eq!(quantile(&[3.0], 0.9), Some(3.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
