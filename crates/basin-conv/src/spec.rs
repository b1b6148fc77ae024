//! The architecture spec of the pytorch-cifar ResNet family ([`ResNetSpec`]): the block kind,
//! the blocks per stage, the base width and the input channels, with the named presets
//! `resnet18` … `resnet152`.
//!
//! One spec value builds the network's graph and flat parameter layout ([`crate::graph`]) and
//! its random init ([`ResNetSpec::init`]), as `FcnSpec` does for fully-connected nets.

use std::fmt;
use std::str::FromStr;

use basin_nn::Activation;
use serde::{Deserialize, Serialize};

/// The residual block of a ResNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockKind {
    /// Two 3×3 convs (expansion 1): ResNet-18 and -34.
    Basic,
    /// 1×1, 3×3, 1×1 convs (expansion 4): ResNet-50, -101 and -152.
    Bottleneck,
}

impl BlockKind {
    /// The ratio of a block's output channels to its planes: 1 or 4.
    pub fn expansion(self) -> usize {
        match self {
            Self::Basic => 1,
            Self::Bottleneck => 4,
        }
    }

    /// `"basic"` or `"bottleneck"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Bottleneck => "bottleneck",
        }
    }
}

/// The named presets, with the block counts of the original ResNet paper.
pub const PRESETS: [(&str, BlockKind, [usize; 4]); 5] = [
    ("resnet18", BlockKind::Basic, [2, 2, 2, 2]),
    ("resnet34", BlockKind::Basic, [3, 4, 6, 3]),
    ("resnet50", BlockKind::Bottleneck, [3, 4, 6, 3]),
    ("resnet101", BlockKind::Bottleneck, [3, 4, 23, 3]),
    ("resnet152", BlockKind::Bottleneck, [3, 8, 36, 3]),
];

/// A ResNet of the pytorch-cifar family with one output logit.
///
/// The stem is a 3×3 conv (stride 1, padding 1, no bias) to `base_width` channels, then
/// BatchNorm and the activation, with no max-pool. Stage `i` (from 0) has `base_width · 2^i`
/// planes and `blocks[i]` blocks; its first block has stride 1 in stage 0 and 2 after. A
/// block's shortcut is a 1×1 conv with the block's stride plus BatchNorm where the stride or
/// the width changes, the identity elsewhere. Then global average pooling (for 32×32 inputs,
/// the paper's `avg_pool2d(4)`) and `linear` to one logit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNetSpec {
    /// The block kind.
    pub block: BlockKind,
    /// Blocks per stage (at least one stage; every count at least 1).
    pub blocks: Vec<usize>,
    /// The stem's channels and stage 0's planes (64 in the presets).
    pub base_width: usize,
    /// Input channels (1 for MNIST, 3 for CIFAR-10).
    pub in_channels: usize,
    /// The nonlinearity (ReLU in the presets; smooth ones serve derivative tests).
    #[serde(default = "relu")]
    pub activation: Activation,
    /// The weight scale of the init: conv and linear weights are N(0, σ_w²/fan_in)
    /// (√2, He-normal).
    #[serde(default = "sqrt2")]
    pub sigma_w: f64,
    /// The standard deviation of the init of the linear layer's bias (1).
    #[serde(default = "one")]
    pub sigma_b: f64,
}

fn relu() -> Activation {
    Activation::Relu
}

fn sqrt2() -> f64 {
    std::f64::consts::SQRT_2
}

fn one() -> f64 {
    1.0
}

/// What is wrong with a [`ResNetSpec`] or an architecture name.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArchError {
    /// The name is neither a preset nor a general spec.
    #[error(
        "unknown architecture {0:?}: expected one of resnet18, resnet34, resnet50, resnet101, \
         resnet152, or a general spec KIND:BLOCKS:WIDTH such as basic:1,1:8 (KIND basic or \
         bottleneck, BLOCKS the blocks per stage, WIDTH the base width)"
    )]
    Unknown(String),
    /// A count or width is zero, or there are no stages.
    #[error("{0}; every stage needs at least one block, and widths and channels must be positive")]
    Empty(String),
    /// σ_w or σ_b is negative or not finite.
    #[error("{field} = {value}; it must be finite and >= 0")]
    BadScale {
        /// `sigma_w` or `sigma_b`.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// The network is too large to count or to hold.
    #[error(
        "the architecture {0} is too large (more parameters or activations than can be \
         counted); give fewer stages or a smaller base width"
    )]
    TooLarge(String),
}

impl ResNetSpec {
    /// The named preset (`resnet18` … `resnet152`) with `in_channels` input channels, base
    /// width 64 and ReLU.
    pub fn preset(name: &str, in_channels: usize) -> Result<Self, ArchError> {
        let (_, block, blocks) = PRESETS
            .iter()
            .find(|(n, _, _)| *n == name)
            .ok_or_else(|| ArchError::Unknown(name.to_string()))?;
        Ok(Self::general(*block, blocks.to_vec(), 64, in_channels))
    }

    /// A general ResNet with ReLU, σ_w = √2 and σ_b = 1.
    pub fn general(
        block: BlockKind,
        blocks: Vec<usize>,
        base_width: usize,
        in_channels: usize,
    ) -> Self {
        Self {
            block,
            blocks,
            base_width,
            in_channels,
            activation: Activation::Relu,
            sigma_w: sqrt2(),
            sigma_b: one(),
        }
    }

    /// Checks the counts, widths and scales.
    pub fn validate(&self) -> Result<(), ArchError> {
        if self.blocks.is_empty() || self.blocks.contains(&0) {
            return Err(ArchError::Empty(format!("blocks {:?}", self.blocks)));
        }
        if self.base_width == 0 || self.in_channels == 0 {
            return Err(ArchError::Empty(format!(
                "base width {}, input channels {}",
                self.base_width, self.in_channels
            )));
        }
        for (field, value) in [("sigma_w", self.sigma_w), ("sigma_b", self.sigma_b)] {
            if !value.is_finite() || value < 0.0 {
                return Err(ArchError::BadScale { field, value });
            }
        }
        let widest = 1usize
            .checked_shl(self.blocks.len() as u32 - 1)
            .filter(|_| self.blocks.len() < 48)
            .and_then(|s| s.checked_mul(self.base_width))
            .and_then(|p| p.checked_mul(self.block.expansion()))
            .and_then(|c| c.checked_mul(c))
            .and_then(|c| c.checked_mul(9));
        let total_blocks = self
            .blocks
            .iter()
            .try_fold(0usize, |a, b| a.checked_add(*b));
        if widest.is_none() || total_blocks.is_none_or(|b| b > 10_000) {
            return Err(ArchError::TooLarge(self.to_string()));
        }
        Ok(())
    }

    /// The planes of stage `i`: `base_width · 2^i`.
    pub fn planes(&self, stage: usize) -> usize {
        self.base_width << stage
    }

    /// The channels of the pooled features: the last stage's planes times the expansion.
    pub fn feature_channels(&self) -> usize {
        self.planes(self.blocks.len() - 1) * self.block.expansion()
    }

    /// The preset this spec is, if any (ReLU, base width 64, σ_w = √2, σ_b = 1).
    pub fn preset_name(&self) -> Option<&'static str> {
        let plain = self.activation == Activation::Relu
            && self.base_width == 64
            && self.sigma_w == sqrt2()
            && self.sigma_b == 1.0;
        PRESETS
            .iter()
            .find(|(_, b, n)| plain && *b == self.block && self.blocks == n)
            .map(|(name, _, _)| *name)
    }
}

impl fmt::Display for ResNetSpec {
    /// The preset's name, or `KIND:BLOCKS:WIDTH`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.preset_name() {
            return write!(f, "{name}");
        }
        let blocks: Vec<String> = self.blocks.iter().map(ToString::to_string).collect();
        write!(
            f,
            "{}:{}:{}",
            self.block.name(),
            blocks.join(","),
            self.base_width
        )
    }
}

/// An architecture as named on the command line: a preset, or `KIND:BLOCKS:WIDTH`. The input
/// channels come from the data ([`ArchName::with_channels`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchName {
    block: BlockKind,
    blocks: Vec<usize>,
    base_width: usize,
}

impl ArchName {
    /// The spec for data with `in_channels` channels.
    pub fn with_channels(&self, in_channels: usize) -> ResNetSpec {
        ResNetSpec::general(
            self.block,
            self.blocks.clone(),
            self.base_width,
            in_channels,
        )
    }
}

impl FromStr for ArchName {
    type Err = ArchError;

    fn from_str(s: &str) -> Result<Self, ArchError> {
        let unknown = || ArchError::Unknown(s.to_string());
        if let Some((_, block, blocks)) = PRESETS.iter().find(|(n, _, _)| *n == s) {
            return Ok(Self {
                block: *block,
                blocks: blocks.to_vec(),
                base_width: 64,
            });
        }
        let parts: Vec<&str> = s.split(':').collect();
        let [kind, blocks, width] = parts[..] else {
            return Err(unknown());
        };
        let block = match kind {
            "basic" => BlockKind::Basic,
            "bottleneck" => BlockKind::Bottleneck,
            _ => return Err(unknown()),
        };
        let blocks = blocks
            .split(',')
            .map(|b| b.trim().parse::<usize>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| unknown())?;
        let base_width = width.trim().parse::<usize>().map_err(|_| unknown())?;
        let name = Self {
            block,
            blocks,
            base_width,
        };
        name.with_channels(1).validate()?;
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_general_names_parse() {
        let r50: ArchName = "resnet50".parse().unwrap();
        let spec = r50.with_channels(3);
        assert_eq!(spec.block, BlockKind::Bottleneck);
        assert_eq!(spec.blocks, [3, 4, 6, 3]);
        assert_eq!(spec.feature_channels(), 2048);
        assert_eq!(spec.to_string(), "resnet50");
        let small: ArchName = "basic:1,2:8".parse().unwrap();
        let spec = small.with_channels(1);
        assert_eq!((spec.blocks.clone(), spec.base_width), (vec![1, 2], 8));
        assert_eq!(spec.to_string(), "basic:1,2:8");
        assert_eq!(spec.feature_channels(), 16);
    }

    #[test]
    fn bad_names_say_what_is_expected() {
        for bad in [
            "resnet19",
            "basic:1,0:8",
            "basic::8",
            "wide:1:8",
            "basic:1:0",
            "",
        ] {
            let err = bad.parse::<ArchName>().unwrap_err().to_string();
            assert!(
                err.contains("resnet18") || err.contains("at least one"),
                "{bad}: {err}"
            );
        }
        let huge = ResNetSpec::general(BlockKind::Basic, vec![1; 60], 64, 3);
        assert!(matches!(huge.validate(), Err(ArchError::TooLarge(_))));
    }
}
