//! Networks too large for the machine are refused before anything is allocated.

use basin_nn::{FcnError, FcnObjective, FcnSpec};

#[test]
fn an_objective_too_large_for_memory_is_an_error_not_an_abort() {
    if basin_data::memory::available_bytes().is_none() {
        return;
    }
    let spec = FcnSpec {
        hidden: vec![100_000_000],
        ..FcnSpec::paper(784)
    };
    let x = vec![0.0f32; 784 * 3];
    let err = FcnObjective::<f32>::new(&spec, &x, &[0, 1, 0]).unwrap_err();
    assert!(matches!(err, FcnError::Memory(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("GiB"), "{text}");
    assert!(text.contains("--hidden"), "{text}");
}

#[test]
fn the_memory_estimate_counts_parameters_and_buffers() {
    let spec = FcnSpec::paper(784);
    let bytes = FcnObjective::<f64>::memory_bytes(&spec, 1000);
    // 784,000 inputs + 1000 labels + 2 × 33,081 parameters + 512 × (6 × 81 + 2 × 784 + 784).
    let values = 784_000 + 1000 + 2 * 33_081 + 512 * (6 * 81 + 2 * 784 + 784);
    assert_eq!(bytes, 8 * values);
}
