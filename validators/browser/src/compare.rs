//! Whether a screenshot matches its baseline: pixelmatch's count with Playwright's rules on top
//! (`threshold` 0.2 by default; `max_diff_pixels` and `max_diff_pixel_ratio`, the smaller
//! allowance winning when both are set and none allowed when neither is; images of different
//! sizes never match).

use crate::image::Image;
use crate::pixelmatch::{pixelmatch, Background, Options};

/// Playwright's default threshold, more lenient than pixelmatch's own 0.1.
pub const DEFAULT_THRESHOLD: f64 = 0.2;

/// How different a screenshot may be and still match.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    pub threshold: f64,
    pub max_diff_pixels: Option<u64>,
    pub max_diff_pixel_ratio: Option<f64>,
}

impl Default for Tolerance {
    fn default() -> Tolerance {
        Tolerance {
            threshold: DEFAULT_THRESHOLD,
            max_diff_pixels: None,
            max_diff_pixel_ratio: None,
        }
    }
}

impl Tolerance {
    /// How many differing pixels an image of `pixels` pixels may have.
    pub fn allowance(&self, pixels: u64) -> u64 {
        let by_ratio = self
            .max_diff_pixel_ratio
            .map(|ratio| (pixels as f64 * ratio).floor() as u64);
        match (self.max_diff_pixels, by_ratio) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => 0,
        }
    }
}

/// The outcome of comparing a screenshot with its baseline.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Matches,
    Differs {
        diff_pixels: u64,
        /// Of all the image's pixels.
        ratio: f64,
        allowance: u64,
        diff: Image,
    },
    /// Sizes differ: `(width, height)` of the baseline and of the screenshot.
    SizeDiffers {
        expected: (u32, u32),
        actual: (u32, u32),
    },
}

/// Compares a screenshot with its baseline.
pub fn compare(expected: &Image, actual: &Image, tolerance: &Tolerance) -> Verdict {
    let options = Options {
        threshold: tolerance.threshold,
        include_aa: false,
        // Screenshots are opaque; blending only matters for baselines made elsewhere, and
        // white is what a page's canvas is.
        background: Background::White,
    };
    let Some((diff_pixels, diff)) = pixelmatch(expected, actual, options, true) else {
        return Verdict::SizeDiffers {
            expected: (expected.width, expected.height),
            actual: (actual.width, actual.height),
        };
    };
    let pixels = u64::from(expected.width) * u64::from(expected.height);
    let allowance = tolerance.allowance(pixels);
    if diff_pixels <= allowance {
        return Verdict::Matches;
    }
    Verdict::Differs {
        diff_pixels,
        ratio: diff_pixels as f64 / pixels.max(1) as f64,
        allowance,
        diff: diff.expect("asked to draw"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smaller_allowance_wins_and_none_allows_nothing() {
        let t = |px, ratio| Tolerance {
            max_diff_pixels: px,
            max_diff_pixel_ratio: ratio,
            ..Tolerance::default()
        };
        assert_eq!(t(None, None).allowance(1000), 0);
        assert_eq!(t(Some(50), None).allowance(1000), 50);
        assert_eq!(t(None, Some(0.01)).allowance(1000), 10);
        assert_eq!(t(Some(50), Some(0.01)).allowance(1000), 10);
        assert_eq!(t(Some(5), Some(0.01)).allowance(1000), 5);
    }

    #[test]
    fn different_sizes_never_match() {
        let img = |w, h| Image {
            width: w,
            height: h,
            rgba: vec![255; (w * h * 4) as usize],
        };
        let lenient = Tolerance {
            max_diff_pixel_ratio: Some(1.0),
            ..Tolerance::default()
        };
        assert_eq!(
            compare(&img(2, 2), &img(2, 3), &lenient),
            Verdict::SizeDiffers {
                expected: (2, 2),
                actual: (2, 3)
            }
        );
        assert_eq!(
            compare(&img(2, 2), &img(2, 2), &Tolerance::default()),
            Verdict::Matches
        );
    }
}
