//! pixelmatch, release 7.2.0, ported operation for operation so that its counts are the
//! original's: the YIQ colour distance of Kotsarenko and Ramos with pixelmatch's constants, the
//! anti-aliasing detector of Vysniauskas (2009), semi-transparent pixels blended over
//! pixelmatch's checkerboard (its default) or over white, and its diff image (grey background,
//! red differences, yellow anti-aliasing).
//!
//! Arithmetic follows the JavaScript: channel values are integers, every distance is computed
//! in `f64` in the same order, and pixels are compared as whole RGBA words first.

use crate::image::Image;

/// The largest possible YIQ distance between two colours; pixelmatch's `35215`.
const MAX_YIQ_DELTA: f64 = 35215.0;

/// What semi-transparent pixels are blended over before they are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Background {
    /// pixelmatch 7.2.0's default: a checkerboard derived from the pixel's offset.
    Checkerboard,
    /// Plain white, as earlier pixelmatch releases did.
    White,
}

/// pixelmatch's options that change the count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Matching threshold, 0 to 1; smaller is more sensitive.
    pub threshold: f64,
    /// Count anti-aliased pixels as differences instead of skipping them.
    pub include_aa: bool,
    pub background: Background,
}

impl Default for Options {
    /// pixelmatch's own defaults.
    fn default() -> Options {
        Options {
            threshold: 0.1,
            include_aa: false,
            background: Background::Checkerboard,
        }
    }
}

/// Counts the pixels that differ between two images of the same size and, when asked, draws
/// the diff image. `None` when the sizes differ.
pub fn pixelmatch(
    img1: &Image,
    img2: &Image,
    options: Options,
    draw: bool,
) -> Option<(u64, Option<Image>)> {
    if (img1.width, img1.height) != (img2.width, img2.height) {
        return None;
    }
    let (width, height) = (img1.width as usize, img1.height as usize);
    let (a, b) = (&img1.rgba[..], &img2.rgba[..]);
    let mut output = draw.then(|| vec![0u8; a.len()]);
    let alpha = 0.1;
    let len = width * height;
    let checkerboard = options.background == Background::Checkerboard;
    if a == b {
        if let Some(out) = output.as_mut() {
            for pos in (0..len).map(|i| i * 4) {
                draw_gray_pixel(a, pos, alpha, out);
            }
        }
        return Some((0, output.map(|rgba| image(img1, rgba))));
    }
    let max_delta = MAX_YIQ_DELTA * options.threshold * options.threshold;
    let mut diff = 0;
    for i in 0..len {
        let pos = i * 4;
        let delta = if word(a, i) == word(b, i) {
            0.0
        } else {
            color_delta(a, b, pos, checkerboard)
        };
        if delta.abs() > max_delta {
            let (x, y) = (i % width, i / width);
            let excluded_aa = !options.include_aa
                && (antialiased(a, x, y, width, height, a, b, checkerboard)
                    || antialiased(b, x, y, width, height, b, a, checkerboard));
            if excluded_aa {
                if let Some(out) = output.as_mut() {
                    draw_pixel(out, pos, [255, 255, 0]);
                }
            } else {
                if let Some(out) = output.as_mut() {
                    // pixelmatch's diffColorAlt defaults to diffColor: red either way.
                    draw_pixel(out, pos, [255, 0, 0]);
                }
                diff += 1;
            }
        } else if let Some(out) = output.as_mut() {
            draw_gray_pixel(a, pos, alpha, out);
        }
    }
    Some((diff, output.map(|rgba| image(img1, rgba))))
}

fn image(like: &Image, rgba: Vec<u8>) -> Image {
    Image {
        width: like.width,
        height: like.height,
        rgba,
    }
}

/// Pixel `i` as one word, as pixelmatch's `Uint32Array` views compare them.
fn word(img: &[u8], i: usize) -> [u8; 4] {
    [img[i * 4], img[i * 4 + 1], img[i * 4 + 2], img[i * 4 + 3]]
}

/// Whether a pixel is likely part of anti-aliasing: among its 8 neighbours it has at most 2
/// equal ones, both darker and brighter ones, and the darkest or the brightest of them has 3+
/// equal siblings in both images.
#[allow(clippy::too_many_arguments)]
fn antialiased(
    img: &[u8],
    x1: usize,
    y1: usize,
    width: usize,
    height: usize,
    a32: &[u8],
    b32: &[u8],
    checkerboard: bool,
) -> bool {
    let x0 = x1.saturating_sub(1);
    let y0 = y1.saturating_sub(1);
    let x2 = (x1 + 1).min(width - 1);
    let y2 = (y1 + 1).min(height - 1);
    let pos4 = (y1 * width + x1) * 4;
    let center = word(img, y1 * width + x1);
    let mut zeroes = usize::from(x1 == x0 || x1 == x2 || y1 == y0 || y1 == y2);
    let (mut min, mut max) = (0.0f64, 0.0f64);
    let (mut min_x, mut min_y, mut max_x, mut max_y) = (0, 0, 0, 0);
    for x in x0..=x2 {
        for y in y0..=y2 {
            if x == x1 && y == y1 {
                continue;
            }
            let delta = brightness_delta(img, pos4, (y * width + x) * 4, center, checkerboard);
            if delta == 0.0 {
                zeroes += 1;
                if zeroes > 2 {
                    return false;
                }
            } else if delta < min {
                min = delta;
                min_x = x;
                min_y = y;
            } else if delta > max {
                max = delta;
                max_x = x;
                max_y = y;
            }
        }
    }
    if min == 0.0 || max == 0.0 {
        return false;
    }
    (has_many_siblings(a32, min_x, min_y, width, height)
        && has_many_siblings(b32, min_x, min_y, width, height))
        || (has_many_siblings(a32, max_x, max_y, width, height)
            && has_many_siblings(b32, max_x, max_y, width, height))
}

/// Whether a pixel has 3+ adjacent pixels of the same colour.
fn has_many_siblings(img: &[u8], x1: usize, y1: usize, width: usize, height: usize) -> bool {
    let x0 = x1.saturating_sub(1);
    let y0 = y1.saturating_sub(1);
    let x2 = (x1 + 1).min(width - 1);
    let y2 = (y1 + 1).min(height - 1);
    let value = word(img, y1 * width + x1);
    let mut zeroes = usize::from(x1 == x0 || x1 == x2 || y1 == y0 || y1 == y2);
    for x in x0..=x2 {
        for y in y0..=y2 {
            if x == x1 && y == y1 {
                continue;
            }
            zeroes += usize::from(value == word(img, y * width + x));
            if zeroes > 2 {
                return true;
            }
        }
    }
    false
}

/// The background channel values pixelmatch blends a semi-transparent pixel at byte offset
/// `k` over.
fn background(k: usize, checkerboard: bool) -> (f64, f64, f64) {
    if !checkerboard {
        return (255.0, 255.0, 255.0);
    }
    let k = k as f64;
    // `(k / φ | 0) % 2` in JavaScript: truncate to an integer, then take the parity.
    let parity = |v: f64| (v.trunc() as i64 % 2) as f64;
    (
        48.0 + 159.0 * parity(k % 2.0),
        48.0 + 159.0 * parity(k / 1.618033988749895),
        48.0 + 159.0 * parity(k / 2.618033988749895),
    )
}

/// The channel differences of two pixels, blended over the background when either is not
/// opaque.
fn channel_deltas(p1: [u8; 4], p2: [u8; 4], k: usize, checkerboard: bool) -> (f64, f64, f64) {
    let [r1, g1, b1, a1] = p1.map(f64::from);
    let [r2, g2, b2, a2] = p2.map(f64::from);
    if a1 < 255.0 || a2 < 255.0 {
        let da = a1 - a2;
        let (rb, gb, bb) = background(k, checkerboard);
        (
            (r1 * a1 - r2 * a2 - rb * da) / 255.0,
            (g1 * a1 - g2 * a2 - gb * da) / 255.0,
            (b1 * a1 - b2 * a2 - bb * da) / 255.0,
        )
    } else {
        (r1 - r2, g1 - g2, b1 - b2)
    }
}

/// The squared YIQ distance of two pixels known to differ, negative when the second is darker.
fn color_delta(img1: &[u8], img2: &[u8], k: usize, checkerboard: bool) -> f64 {
    let (dr, dg, db) = channel_deltas(word(img1, k / 4), word(img2, k / 4), k, checkerboard);
    let y = dr * 0.29889531 + dg * 0.58662247 + db * 0.11448223;
    let i = dr * 0.59597799 - dg * 0.27417610 - db * 0.32180189;
    let q = dr * 0.21147017 - dg * 0.52261711 + db * 0.31114694;
    let delta = 0.5053 * y * y + 0.299 * i * i + 0.1957 * q * q;
    if y > 0.0 {
        -delta
    } else {
        delta
    }
}

/// The brightness (Y) difference between the centre pixel at `k` and its neighbour at `m`.
fn brightness_delta(img: &[u8], k: usize, m: usize, center: [u8; 4], checkerboard: bool) -> f64 {
    let neighbour = word(img, m / 4);
    if center == neighbour {
        return 0.0;
    }
    let (dr, dg, db) = channel_deltas(center, neighbour, k, checkerboard);
    dr * 0.29889531 + dg * 0.58662247 + db * 0.11448223
}

fn draw_pixel(output: &mut [u8], pos: usize, [r, g, b]: [u8; 3]) {
    output[pos..pos + 4].copy_from_slice(&[r, g, b, 255]);
}

/// An unchanged pixel in the diff image: its brightness, faded towards white.
fn draw_gray_pixel(img: &[u8], i: usize, alpha: f64, output: &mut [u8]) {
    let [r, g, b, a] = word(img, i / 4).map(f64::from);
    let value =
        255.0 + (r * 0.29889531 + g * 0.58662247 + b * 0.11448223 - 255.0) * alpha * a / 255.0;
    // A typed array stores a number by truncating it.
    let v = value as u8;
    draw_pixel(output, i, [v, v, v]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(width: u32, height: u32, rgba: [u8; 4]) -> Image {
        Image {
            width,
            height,
            rgba: rgba.repeat((width * height) as usize),
        }
    }

    #[test]
    fn identical_images_do_not_differ_and_sizes_must_match() {
        let a = solid(4, 4, [10, 20, 30, 255]);
        assert_eq!(
            pixelmatch(&a, &a, Options::default(), false),
            Some((0, None))
        );
        assert_eq!(
            pixelmatch(&a, &solid(4, 5, [0; 4]), Options::default(), false),
            None
        );
    }

    #[test]
    fn a_changed_block_counts_its_pixels_and_is_drawn_red() {
        let a = solid(8, 8, [255, 255, 255, 255]);
        let mut b = a.clone();
        for y in 2..5 {
            for x in 2..5 {
                let at = (y * 8 + x) * 4;
                b.rgba[at..at + 4].copy_from_slice(&[0, 0, 0, 255]);
            }
        }
        let (count, diff) = pixelmatch(&a, &b, Options::default(), true).expect("same size");
        assert_eq!(count, 9);
        let diff = diff.expect("drawn");
        assert_eq!(&diff.rgba[(2 * 8 + 2) * 4..][..4], &[255, 0, 0, 255]);
        // Unchanged white pixels are drawn white (faded brightness of white).
        assert_eq!(&diff.rgba[..4], &[255, 255, 255, 255]);
    }

    #[test]
    fn a_difference_below_the_threshold_is_not_counted() {
        let a = solid(2, 2, [100, 100, 100, 255]);
        let b = solid(2, 2, [104, 100, 100, 255]);
        assert_eq!(
            pixelmatch(&a, &b, Options::default(), false).map(|r| r.0),
            Some(0)
        );
        let strict = Options {
            threshold: 0.0,
            ..Options::default()
        };
        assert_eq!(pixelmatch(&a, &b, strict, false).map(|r| r.0), Some(4));
    }

    #[test]
    fn a_one_pixel_edge_between_flat_areas_is_anti_aliasing() {
        // Black left half, white right half; the second image adds a grey column between
        // them: a typical anti-aliased edge, skipped unless include_aa.
        let (w, h) = (6u32, 5u32);
        let paint = |grey_column: bool| {
            let mut img = solid(w, h, [255, 255, 255, 255]);
            for y in 0..h as usize {
                for x in 0..w as usize {
                    let at = (y * w as usize + x) * 4;
                    if x < 3 {
                        img.rgba[at..at + 3].copy_from_slice(&[0, 0, 0]);
                    }
                    if grey_column && x == 3 {
                        img.rgba[at..at + 3].copy_from_slice(&[128, 128, 128]);
                    }
                }
            }
            img
        };
        let (a, b) = (paint(false), paint(true));
        assert_eq!(
            pixelmatch(&a, &b, Options::default(), false).map(|r| r.0),
            Some(0)
        );
        let counted = Options {
            include_aa: true,
            ..Options::default()
        };
        assert_eq!(pixelmatch(&a, &b, counted, false).map(|r| r.0), Some(5));
    }
}
