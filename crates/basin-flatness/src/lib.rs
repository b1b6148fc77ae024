//! `basin-flatness` owns basin's measures of local flatness, written over the `Objective`
//! trait of `basin-nn` only: Keskar sharpness, the Hessian spectrum by Lanczos (spectral norm,
//! top-k eigenvalues, their log-product), the Hutchinson trace and the dense Hessian of small
//! nets. It is empty until the flatness measures land (see `ARCHITECTURE.md`).
