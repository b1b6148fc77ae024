//! The paper's CIFAR-10 training augmentation, seeded: a random crop of the padded image
//! (torchvision's `RandomCrop(32, padding=4)`) followed by a horizontal flip with probability
//! ½ (`RandomHorizontalFlip()`).
//!
//! For an image of `C × H × W` and a padding `p`, the crop pads `p` values on every side of
//! each channel and takes the `H × W` window whose top-left corner is at `(top, left)` of the
//! padded image, each drawn uniformly from `0..=2p`; `(p, p)` is the image itself. The flip
//! then reverses every row of the window.
//!
//! # The padding value
//!
//! The paper's transform is `RandomCrop`, `RandomHorizontalFlip`, `ToTensor`, `Normalize`: the
//! padding is applied to raw pixels, so padded pixels are 0 before normalisation and
//! `(0 − mean) / std` after it. basin normalises a data set once, when it is prepared
//! ([`ChannelNorm::apply`]), before any augmentation, so the padding value of each channel is
//! the normalised value of a 0 pixel: [`Augment::pad_values`], which [`Augment::normalised`]
//! derives from the [`ChannelNorm`] the data went through. The default, no pad values, pads
//! with 0, which is right for data that are not normalised (pixels in [0, 1]).
//!
//! # Randomness
//!
//! Every draw comes from the caller's [`rand::Rng`], so a seeded `ChaCha8Rng` gives the same
//! images on every run. For each image, in order: `top` then `left` (only when the padding is
//! positive), then the flip's coin (only when `flip` is on). [`Augment::apply_batch`] draws for
//! the images of a batch in the batch's order.

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::cifar::ChannelNorm;
use crate::dataset::{Dataset, ImageShape};
use crate::error::{DataError, Result};

/// The training augmentation: a random crop of the padded image, then a random horizontal
/// flip (see the [module documentation](self)).
///
/// In a spec, every field may be left out; the defaults are the paper's `padding 4` and flip,
/// with zero padding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Augment {
    /// The padding `p` on every side; the crop's offsets are drawn from `0..=2p`. 0 turns the
    /// crop off.
    pub crop_padding: usize,
    /// Whether each image is flipped horizontally with probability ½.
    pub flip: bool,
    /// The value the padding holds in each channel (one per channel), or none for 0 in every
    /// channel. For normalised data this is the normalised 0 pixel, `−mean / std`
    /// ([`Augment::normalised`]).
    pub pad_values: Vec<f32>,
}

impl Default for Augment {
    /// The paper's augmentation: padding 4, flip on, zero padding.
    fn default() -> Self {
        Self {
            crop_padding: 4,
            flip: true,
            pad_values: Vec::new(),
        }
    }
}

/// The random choices of one augmented image ([`Augment::draw`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Draw {
    /// The window's first row in the padded image, in `0..=2p`.
    pub top: usize,
    /// The window's first column in the padded image, in `0..=2p`.
    pub left: usize,
    /// Whether the window is flipped horizontally.
    pub flip: bool,
}

impl Augment {
    /// No augmentation: no crop, no flip; every image is copied unchanged and no randomness is
    /// drawn.
    pub fn none() -> Self {
        Self {
            crop_padding: 0,
            flip: false,
            pad_values: Vec::new(),
        }
    }

    /// The paper's augmentation (padding 4, flip) for data normalised by `norm`: each channel
    /// is padded with its normalised 0 pixel, `(0 − mean[c]) / std[c]`, exactly the value
    /// [`ChannelNorm::apply`] gives a 0 pixel, as in the paper's transform, which pads before
    /// it normalises.
    pub fn normalised(norm: &ChannelNorm) -> Self {
        Self {
            pad_values: (0..3).map(|c| (0.0 - norm.mean[c]) / norm.std[c]).collect(),
            ..Self::default()
        }
    }

    /// True when the augmentation leaves every image unchanged (no padding and no flip).
    pub fn is_identity(&self) -> bool {
        self.crop_padding == 0 && !self.flip
    }

    /// Checks the augmentation against images of `shape`: the shape holds values, there is
    /// one finite pad value per channel (or none), and the padded image's size fits in memory
    /// addresses.
    pub fn check(&self, shape: ImageShape) -> Result<()> {
        let bad = |problem: String| Err(DataError::Augment { problem });
        if shape.is_empty() {
            return bad(format!("images of shape {shape} hold no pixels"));
        }
        let pads = self.pad_values.len();
        if pads != 0 && pads != shape.channels {
            return bad(format!(
                "pad_values has {pads} values but the images ({shape}) have {} channels; give \
                 one per channel, or none to pad with 0",
                shape.channels
            ));
        }
        if let Some(c) = self.pad_values.iter().position(|v| !v.is_finite()) {
            return bad(format!(
                "pad_values[{c}] is {}; pad values must be finite (is a std 0?)",
                self.pad_values[c]
            ));
        }
        let fits = self
            .crop_padding
            .checked_mul(2)
            .and_then(|p2| p2.checked_add(shape.height.max(shape.width)));
        if fits.is_none() {
            return bad(format!(
                "crop_padding {} is too large for images of shape {shape}; use the paper's 4",
                self.crop_padding
            ));
        }
        Ok(())
    }

    /// Draws the random choices of one image from `rng`: `top` and `left` uniform in
    /// `0..=2p` (drawn only when `p > 0`; `p` otherwise), then the flip's coin (drawn only when
    /// `flip` is on).
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> Draw {
        let p = self.crop_padding;
        let (top, left) = if p == 0 {
            (0, 0)
        } else {
            let max = p.saturating_mul(2);
            (rng.random_range(0..=max), rng.random_range(0..=max))
        };
        Draw {
            top,
            left,
            flip: self.flip && rng.random_bool(0.5),
        }
    }

    /// Writes into `dst` the image `src` (CHW, of `shape`) cropped at `draw`'s offsets from the
    /// padded image and flipped if `draw` says so. `src` and `dst` must both hold
    /// `shape.len()` values, and the offsets must lie in `0..=2p`.
    pub fn apply_at(
        &self,
        shape: ImageShape,
        src: &[f32],
        dst: &mut [f32],
        draw: Draw,
    ) -> Result<()> {
        self.check(shape)?;
        check_buffers(shape, src.len(), dst.len())?;
        let max = 2 * self.crop_padding;
        if draw.top > max || draw.left > max {
            return Err(DataError::Augment {
                problem: format!(
                    "offsets ({}, {}) lie outside 0..={max} (crop_padding {})",
                    draw.top, draw.left, self.crop_padding
                ),
            });
        }
        self.crop_flip(shape, src, dst, draw);
        Ok(())
    }

    /// Augments one image: draws from `rng` ([`Augment::draw`]) and writes the augmented
    /// `src` (CHW, of `shape`) into `dst`, which must have the same length. Returns the draw.
    pub fn apply<R: Rng + ?Sized>(
        &self,
        shape: ImageShape,
        src: &[f32],
        dst: &mut [f32],
        rng: &mut R,
    ) -> Result<Draw> {
        self.check(shape)?;
        check_buffers(shape, src.len(), dst.len())?;
        let draw = self.draw(rng);
        self.crop_flip(shape, src, dst, draw);
        Ok(draw)
    }

    /// Augments the examples `batch` of `data` (indices into it, in order) into `out`, which
    /// holds `batch.len() × data.dim()` values: row `k` of `out` is example `batch[k]`
    /// augmented. The draws come from `rng` in the batch's order.
    ///
    /// `data` must have an image shape ([`Dataset::image_shape`]); everything is checked before
    /// anything is drawn or written.
    pub fn apply_batch<R: Rng + ?Sized>(
        &self,
        data: &Dataset,
        batch: &[usize],
        out: &mut [f32],
        rng: &mut R,
    ) -> Result<()> {
        let shape = data.require_image_shape()?;
        self.check(shape)?;
        if let Some(&bad) = batch.iter().find(|&&i| i >= data.len()) {
            return Err(DataError::Shape {
                name: data.name().to_owned(),
                problem: format!(
                    "batch index {bad} is out of range for {} examples",
                    data.len()
                ),
            });
        }
        let dim = data.dim();
        if Some(out.len()) != batch.len().checked_mul(dim) {
            return Err(DataError::Augment {
                problem: format!(
                    "the output buffer holds {} values but a batch of {} images of {dim} values \
                     needs {}; size it batch.len() × dim",
                    out.len(),
                    batch.len(),
                    batch.len().saturating_mul(dim)
                ),
            });
        }
        for (&i, dst) in batch.iter().zip(out.chunks_exact_mut(dim)) {
            let draw = self.draw(rng);
            self.crop_flip(shape, data.row(i), dst, draw);
        }
        Ok(())
    }

    /// The crop and flip, on checked arguments: `src` and `dst` of `shape.len()` values,
    /// offsets in `0..=2p`, `2p + max(H, W)` without overflow, pad values 0 or one per channel.
    fn crop_flip(&self, shape: ImageShape, src: &[f32], dst: &mut [f32], draw: Draw) {
        let (p, h, w) = (self.crop_padding, shape.height, shape.width);
        let Draw { top, left, flip } = draw;
        // Output column x reads padded column x + left, i.e. image column x + left − p, which
        // lies in the image for x in [p − left, p + w − left) ∩ [0, w).
        let x_lo = p.saturating_sub(left).min(w);
        let x_hi = (p + w).saturating_sub(left).min(w);
        let plane = shape.plane();
        let channels = src.chunks_exact(plane).zip(dst.chunks_exact_mut(plane));
        for (c, (s, o)) in channels.enumerate() {
            let pad = self.pad_values.get(c).copied().unwrap_or(0.0);
            for (y, row) in o.chunks_exact_mut(w).enumerate() {
                // Output row y reads padded row y + top, i.e. image row y + top − p.
                let sy = y + top;
                if sy < p || sy >= p + h || x_lo >= x_hi {
                    row.fill(pad);
                    continue;
                }
                let image_row = &s[(sy - p) * w..(sy - p + 1) * w];
                row[..x_lo].fill(pad);
                row[x_lo..x_hi].copy_from_slice(&image_row[x_lo + left - p..x_hi + left - p]);
                row[x_hi..].fill(pad);
                if flip {
                    row.reverse();
                }
            }
        }
    }
}

/// Checks that an image and its output buffer both hold `shape.len()` values.
fn check_buffers(shape: ImageShape, src: usize, dst: usize) -> Result<()> {
    let len = shape.len();
    for (what, n) in [("the input image", src), ("the output buffer", dst)] {
        if n != len {
            return Err(DataError::Augment {
                problem: format!(
                    "{what} holds {n} values but images of shape {shape} hold {len}; pass one \
                     CHW image of that shape"
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// A 2-channel 3×5 image (non-square, so rows and columns cannot be confused) with
    /// distinct positive values.
    fn shape() -> ImageShape {
        ImageShape::new(2, 3, 5)
    }

    fn image() -> Vec<f32> {
        (1..=30).map(|v| v as f32).collect()
    }

    fn padded(p: usize) -> Augment {
        Augment {
            crop_padding: p,
            flip: true,
            pad_values: vec![-1.5, -2.5],
        }
    }

    /// The transform written the slow, obvious way: build the padded image, cut the window,
    /// reverse its rows.
    fn reference(aug: &Augment, s: ImageShape, src: &[f32], d: Draw) -> Vec<f32> {
        let p = aug.crop_padding;
        let (ph, pw) = (s.height + 2 * p, s.width + 2 * p);
        let mut out = Vec::new();
        for c in 0..s.channels {
            let pad = aug.pad_values.get(c).copied().unwrap_or(0.0);
            let mut big = vec![pad; ph * pw];
            for y in 0..s.height {
                for x in 0..s.width {
                    big[(y + p) * pw + x + p] = src[(c * s.height + y) * s.width + x];
                }
            }
            for y in 0..s.height {
                let mut row: Vec<f32> = (0..s.width)
                    .map(|x| big[(y + d.top) * pw + x + d.left])
                    .collect();
                if d.flip {
                    row.reverse();
                }
                out.extend(row);
            }
        }
        out
    }

    fn at(aug: &Augment, d: Draw) -> Vec<f32> {
        let mut out = vec![f32::NAN; 30];
        aug.apply_at(shape(), &image(), &mut out, d).unwrap();
        out
    }

    #[test]
    fn every_offset_and_flip_matches_the_padded_window() {
        for p in [0, 1, 2, 4, 7] {
            let aug = padded(p);
            for top in 0..=2 * p {
                for left in 0..=2 * p {
                    for flip in [false, true] {
                        let d = Draw { top, left, flip };
                        assert_eq!(at(&aug, d), reference(&aug, shape(), &image(), d), "{d:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_centre_crop_is_the_identity_and_two_flips_cancel() {
        let aug = padded(4);
        let centre = Draw {
            top: 4,
            left: 4,
            flip: false,
        };
        assert_eq!(at(&aug, centre), image());
        let flip = Draw {
            flip: true,
            ..centre
        };
        let once = at(&aug, flip);
        assert_ne!(once, image());
        assert_eq!(&once[..5], &[5.0, 4.0, 3.0, 2.0, 1.0]);
        let mut twice = vec![0.0; 30];
        aug.apply_at(shape(), &once, &mut twice, flip).unwrap();
        assert_eq!(twice, image());
    }

    #[test]
    fn the_pad_value_fills_exactly_the_window_outside_the_image() {
        let p = 2;
        let aug = padded(p);
        let s = shape();
        for top in 0..=2 * p {
            for left in 0..=2 * p {
                let out = at(
                    &aug,
                    Draw {
                        top,
                        left,
                        flip: false,
                    },
                );
                for c in 0..2 {
                    for y in 0..3 {
                        for x in 0..5 {
                            let v = out[(c * s.height + y) * s.width + x];
                            let outside = !(p..p + 3).contains(&(y + top))
                                || !(p..p + 5).contains(&(x + left));
                            assert_eq!(
                                v == aug.pad_values[c],
                                outside,
                                "{top},{left} ({c},{y},{x})"
                            );
                            if !outside {
                                assert!(v >= 1.0);
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn zero_padding_by_default_and_whole_rows_of_padding_when_far_off() {
        let aug = Augment {
            crop_padding: 6,
            ..Augment::default()
        };
        let mut out = vec![f32::NAN; 30];
        let d = Draw {
            top: 0,
            left: 12,
            flip: false,
        };
        aug.apply_at(shape(), &image(), &mut out, d).unwrap();
        assert!(out.iter().all(|&v| v == 0.0), "{out:?}");
    }

    #[test]
    fn normalised_padding_is_the_normalised_zero_pixel() {
        let norm = ChannelNorm::PAPER;
        let aug = Augment::normalised(&norm);
        assert_eq!((aug.crop_padding, aug.flip), (4, true));
        let zero = Dataset::new("zero", 3, vec![0.0; 3], None, None).unwrap();
        let zero = norm.apply(zero).unwrap();
        assert_eq!(aug.pad_values, zero.features());
        assert!((aug.pad_values[0] - (-0.4914 / 0.247)).abs() < 1e-6);
    }

    fn batch_out(aug: &Augment, seed: u64) -> Vec<f32> {
        let n = 6;
        let s = ImageShape::new(3, 4, 4);
        let data = Dataset::new(
            "imgs",
            48,
            (0..n * 48).map(|v| v as f32).collect(),
            None,
            None,
        )
        .unwrap()
        .with_image_shape(s)
        .unwrap();
        let batch = [5, 0, 3, 3, 1, 2, 4, 0];
        let mut out = vec![f32::NAN; batch.len() * 48];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        aug.apply_batch(&data, &batch, &mut out, &mut rng).unwrap();
        // Each row is its own example augmented by the next draw of the same sequence.
        let mut replay = ChaCha8Rng::seed_from_u64(seed);
        for (k, &i) in batch.iter().enumerate() {
            let mut one = vec![0.0; 48];
            aug.apply(s, data.row(i), &mut one, &mut replay).unwrap();
            assert_eq!(&out[k * 48..(k + 1) * 48], &one[..]);
        }
        out
    }

    #[test]
    fn seeds_reproduce_and_differ() {
        let aug = Augment {
            crop_padding: 2,
            ..Augment::default()
        };
        assert_eq!(batch_out(&aug, 7), batch_out(&aug, 7));
        assert_ne!(batch_out(&aug, 7), batch_out(&aug, 8));
    }

    #[test]
    fn draws_cover_every_offset_and_both_flips() {
        let p = 3;
        let aug = padded(p);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut seen = HashSet::new();
        let mut flips = 0;
        let draws = 10_000;
        for _ in 0..draws {
            let d = aug.draw(&mut rng);
            assert!(d.top <= 2 * p && d.left <= 2 * p, "{d:?}");
            seen.insert((d.top, d.left));
            flips += usize::from(d.flip);
        }
        assert_eq!(seen.len(), (2 * p + 1) * (2 * p + 1));
        // Binomial(10000, ½): 5000 ± 5 standard deviations.
        assert!((4750..=5250).contains(&flips), "{flips}");
        let no_flip = Augment { flip: false, ..aug };
        assert!((0..100).all(|_| !no_flip.draw(&mut rng).flip));
    }

    #[test]
    fn none_copies_and_draws_nothing() {
        let aug = Augment::none();
        assert!(aug.is_identity() && !Augment::default().is_identity());
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut out = vec![0.0; 30];
        let d = aug.apply(shape(), &image(), &mut out, &mut rng).unwrap();
        assert_eq!(out, image());
        assert_eq!(
            d,
            Draw {
                top: 0,
                left: 0,
                flip: false
            }
        );
        assert_eq!(rng.next_u64(), ChaCha8Rng::seed_from_u64(3).next_u64());
    }

    #[test]
    fn bad_configurations_and_buffers_are_errors() {
        let mut out = vec![0.0; 30];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let msg = |r: Result<Draw>| r.unwrap_err().to_string();
        let three_pads = Augment {
            pad_values: vec![0.0; 3],
            ..Augment::default()
        };
        let m = msg(three_pads.apply(shape(), &image(), &mut out, &mut rng));
        assert!(
            m.contains("pad_values has 3") && m.contains("2 channels"),
            "{m}"
        );
        let nan = Augment {
            pad_values: vec![0.0, f32::INFINITY],
            ..Augment::default()
        };
        let m = msg(nan.apply(shape(), &image(), &mut out, &mut rng));
        assert!(m.contains("pad_values[1]"), "{m}");
        let huge = Augment {
            crop_padding: usize::MAX / 2,
            ..Augment::default()
        };
        let m = msg(huge.apply(shape(), &image(), &mut out, &mut rng));
        assert!(m.contains("crop_padding"), "{m}");
        let aug = padded(1);
        let m = msg(aug.apply(shape(), &image()[..29], &mut out, &mut rng));
        assert!(m.contains("input image holds 29"), "{m}");
        let m = msg(aug.apply(shape(), &image(), &mut out[..5], &mut rng));
        assert!(m.contains("output buffer holds 5"), "{m}");
        let m = msg(aug.apply(ImageShape::new(2, 0, 5), &[], &mut [], &mut rng));
        assert!(m.contains("no pixels"), "{m}");
        let far = Draw {
            top: 3,
            left: 0,
            flip: false,
        };
        let e = aug.apply_at(shape(), &image(), &mut out, far).unwrap_err();
        assert!(e.to_string().contains("0..=2"), "{e}");
    }

    #[test]
    fn batch_errors_name_the_data_set() {
        let aug = Augment::default();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let flat = Dataset::new("flat", 4, vec![0.0; 8], None, None).unwrap();
        let mut out = vec![0.0; 4];
        let e = aug
            .apply_batch(&flat, &[0], &mut out, &mut rng)
            .unwrap_err();
        assert!(e.to_string().contains("\"flat\"") && e.to_string().contains("image shape"));
        let imgs = flat.with_image_shape(ImageShape::new(1, 2, 2)).unwrap();
        let e = aug
            .apply_batch(&imgs, &[2], &mut out, &mut rng)
            .unwrap_err();
        assert!(e.to_string().contains("index 2"), "{e}");
        let e = aug
            .apply_batch(&imgs, &[0, 1], &mut out, &mut rng)
            .unwrap_err();
        assert!(e.to_string().contains("holds 4 values"), "{e}");
        aug.apply_batch(&imgs, &[], &mut [], &mut rng).unwrap();
    }
}
