//! Model files: safetensors with `layers.{i}.weight` `[out, in]` and `layers.{i}.bias` `[out]`.
//!
//! # The format
//!
//! A basin model file is an ordinary [safetensors](https://github.com/huggingface/safetensors)
//! file holding a fully-connected network ([`FcnSpec`](crate::FcnSpec)) with one output logit:
//!
//! * for each layer `i = 0, 1, …, k` (numbered from 0 without gaps, input to output), the
//!   tensor `layers.{i}.weight` of shape `[out, in]`, row-major (the layout of
//!   `torch.nn.Linear.weight`, *not* transposed), and the tensor `layers.{i}.bias` of shape
//!   `[out]`. Layer `i`'s `in` is layer `i − 1`'s `out`; the last layer's `out` is 1;
//! * every tensor in one dtype, `F32` or `F64`, little-endian (files with other dtypes, or a mix
//!   of the two, are rejected with a message saying how to convert them);
//! * no other tensors;
//! * in the header's `__metadata__`, when basin wrote the file, `"basin.format"` =
//!   `"basin-fcn/1"` ([`FORMAT`]) and `"basin.spec"` = the [`FcnSpec`](crate::FcnSpec) as JSON (widths,
//!   activation, σ_w, σ_b). Other metadata keys (PyTorch's `"format": "pt"`, say) are ignored.
//!
//! Basin writes the tensors' data in the order of its flat parameter vector (per layer, the
//! weight then the bias), so the data section of the file is θ itself, and the header's JSON
//! keys sorted, so the same network always gives the same bytes.
//!
//! # Files from PyTorch
//!
//! A network trained elsewhere loads once its `nn.Linear` layers are saved under these names:
//! collect the linear layers in order, input to output, and save the dictionary that maps
//! `layers.{i}.weight` to the i-th layer's `weight` and `layers.{i}.bias` to its `bias`, as in
//! `{f"layers.{i}.weight": lin.weight for i, lin in enumerate(linears)}` plus the same for the
//! biases, with `safetensors.torch.save_file` (after `.float()` or `.double()`, `.contiguous()`
//! and `.detach()`). Such a file has no basin metadata: the widths come from the shapes, the
//! activation is ReLU unless the loader is told otherwise, and σ_w = √2, σ_b = 1 (the σ only
//! matter to re-initialise the network or to build its NNGP kernel, not to evaluate it).

mod errors;
mod format;
mod read;
#[cfg(test)]
mod tests;
mod write;

pub use errors::ModelError;
pub(crate) use format::locate;
pub use format::{FORMAT, META_FORMAT, META_SPEC, StoredDtype};
pub use read::{Model, from_bytes, load};
pub use write::{save, to_bytes};
