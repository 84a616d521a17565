//! RTO/RPO history of a plan: per finished run, and p50/p95/max over them.

use super::measure::{Measurement, format_ms};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub runs: usize,
    pub rto_p50_ms: Option<i64>,
    pub rto_p95_ms: Option<i64>,
    pub rto_max_ms: Option<i64>,
    pub rpo_p50_ms: Option<i64>,
    pub rpo_p95_ms: Option<i64>,
    pub rpo_max_ms: Option<i64>,
    pub passed: usize,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

pub fn summarize<M: std::borrow::Borrow<Measurement>>(runs: &[M]) -> Summary {
    let sorted = |f: fn(&Measurement) -> Option<i64>| {
        let mut v: Vec<i64> = runs.iter().filter_map(|m| f(m.borrow())).collect();
        v.sort_unstable();
        v
    };
    let rto = sorted(|m| m.rto_ms);
    let rpo = sorted(|m| m.rpo_ms);
    Summary {
        runs: runs.len(),
        rto_p50_ms: percentile(&rto, 50.0),
        rto_p95_ms: percentile(&rto, 95.0),
        rto_max_ms: rto.last().copied(),
        rpo_p50_ms: percentile(&rpo, 50.0),
        rpo_p95_ms: percentile(&rpo, 95.0),
        rpo_max_ms: rpo.last().copied(),
        passed: runs.iter().filter(|m| m.borrow().passed).count(),
    }
}

pub fn render_text(plan: &str, runs: &[Measurement], summary: &Summary) -> String {
    let show = |v: Option<i64>| v.map_or("-".to_owned(), format_ms);
    let mut out = format!("{:<22} {:<6} {:>10} {:>10} {:>9}\n", "run", "result", "RTO", "RPO", "rows lost");
    for m in runs {
        out += &format!(
            "{:<22} {:<6} {:>10} {:>10} {:>9}\n",
            m.run_id,
            if m.passed { "pass" } else { "FAIL" },
            show(m.rto_ms),
            show(m.rpo_ms),
            m.rows_lost.map_or("-".into(), |n| n.to_string())
        );
    }
    out += &format!(
        "\n{plan}: {} runs, {} passed\nRTO  p50 {}  p95 {}  max {}\nRPO  p50 {}  p95 {}  max {}\n",
        summary.runs,
        summary.passed,
        show(summary.rto_p50_ms),
        show(summary.rto_p95_ms),
        show(summary.rto_max_ms),
        show(summary.rpo_p50_ms),
        show(summary.rpo_p95_ms),
        show(summary.rpo_max_ms)
    );
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<i64> = (1..=20).collect();
        assert_eq!(super::percentile(&v, 50.0), Some(10));
        assert_eq!(super::percentile(&v, 95.0), Some(19));
        assert_eq!(super::percentile(&[7], 95.0), Some(7));
        assert_eq!(super::percentile(&[], 50.0), None);
    }
}
