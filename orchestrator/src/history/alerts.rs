//! `[alerts]`: a run compared with the runs before it. Each threshold crossed is one warning in
//! the report; the run's exit status changes only under `run --alerts-fail`.

use super::stats::{self, ValidatorStats};
use super::Summary;

/// Fewer earlier runs than this make no p95 to regress from.
const MIN_SAMPLES: u32 = 5;

/// The thresholds, each off unless set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alerts {
    /// A validator's duration above this many times its p95 over the window.
    pub p95_regression: Option<f64>,
    /// A validator's share of timed-out runs over the window, this run included, above this.
    pub timeout_rate: Option<f64>,
    /// A validator's share of files answered from the cache in this run below this.
    pub hit_rate_below: Option<f64>,
    /// How many earlier runs make the window.
    pub window: u32,
}

/// The window when `[alerts] window` is not set.
pub const DEFAULT_WINDOW: u32 = 20;

impl Default for Alerts {
    fn default() -> Alerts {
        Alerts {
            p95_regression: None,
            timeout_rate: None,
            hit_rate_below: None,
            window: DEFAULT_WINDOW,
        }
    }
}

impl Alerts {
    /// Whether any threshold is set (otherwise the history need not be read).
    pub fn any(&self) -> bool {
        self.p95_regression.is_some()
            || self.timeout_rate.is_some()
            || self.hit_rate_below.is_some()
    }

    /// The alerts `run` raises, given the earlier runs of the window, oldest first.
    pub fn check(&self, earlier: &[Summary], run: &Summary) -> Vec<String> {
        let before = stats::of(earlier);
        let with_run = stats::of(earlier.iter().chain(std::iter::once(run)));
        let find = |all: &'_ [ValidatorStats], name: &str| -> Option<ValidatorStats> {
            all.iter().find(|s| s.name == name).cloned()
        };
        let mut alerts = Vec::new();
        for v in run.validators.iter().filter(|v| v.ran()) {
            if let (Some(factor), Some(past)) = (self.p95_regression, find(&before, &v.name)) {
                let limit = past.p95_ms as f64 * factor;
                if past.runs >= MIN_SAMPLES && v.duration_ms as f64 > limit {
                    alerts.push(format!(
                        "alert: {} took {:.2} s, more than {factor}× its p95 of {:.2} s over the \
                         last {} runs",
                        v.name,
                        v.duration_ms as f64 / 1000.0,
                        past.p95_ms as f64 / 1000.0,
                        past.runs
                    ));
                }
            }
            if let (Some(limit), Some(now)) = (self.timeout_rate, find(&with_run, &v.name)) {
                if now.timeout_rate > limit {
                    alerts.push(format!(
                        "alert: {} timed out in {:.0}% of its last {} runs (limit {:.0}%)",
                        v.name,
                        now.timeout_rate * 100.0,
                        now.runs,
                        limit * 100.0
                    ));
                }
            }
            if let Some(limit) = self.hit_rate_below.filter(|_| v.files > 0) {
                let rate = f64::from(v.cached_files) / f64::from(v.files);
                if rate < limit {
                    alerts.push(format!(
                        "alert: the cache answered {:.0}% of {}'s {} files (below {:.0}%)",
                        rate * 100.0,
                        v.name,
                        v.files,
                        limit * 100.0
                    ));
                }
            }
        }
        alerts
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::summary;
    use super::*;

    #[test]
    fn each_threshold_fires_only_past_its_limit() {
        let earlier: Vec<Summary> = (1..=10)
            .map(|n| summary(0, &[("pyright", "passed", 1000 + n * 10)]))
            .collect();
        let alerts = Alerts {
            p95_regression: Some(1.5),
            timeout_rate: Some(0.05),
            hit_rate_below: Some(0.6),
            window: 20,
        };
        // p95 of the earlier runs is 1,100 ms: 1,600 ms is above 1.5× that, 1,500 ms is not.
        let slow = summary(0, &[("pyright", "passed", 1700)]);
        let fired = alerts.check(&earlier, &slow);
        assert_eq!(fired.len(), 2, "{fired:?}");
        assert!(fired[0].contains("pyright took 1.70 s, more than 1.5× its p95 of 1.10 s"));
        assert!(fired[1].contains("the cache answered 50% of pyright's 10 files"));
        let fine = summary(0, &[("pyright", "passed", 1500)]);
        let calm = Alerts {
            hit_rate_below: Some(0.5),
            ..alerts
        };
        assert!(calm.check(&earlier, &fine).is_empty());
        let timed_out = summary(0, &[("pyright", "timed_out", 1500)]);
        let fired = calm.check(&earlier, &timed_out);
        assert_eq!(
            fired,
            ["alert: pyright timed out in 9% of its last 11 runs (limit 5%)"]
        );
        // Too few earlier runs: no p95 to compare with.
        assert!(calm.check(&earlier[..3], &slow).is_empty());
    }
}
