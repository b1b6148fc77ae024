//! Model files: safetensors with `layers.{i}.weight` `[out, in]` and `layers.{i}.bias` `[out]`.
