//! The Boolean cube against the golden inputs and majority target of the paper's system.

use std::path::Path;

use basin_data::{BoolTarget, boolean, npy};

fn fixture(name: &str) -> Vec<f64> {
    npy::read(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
    .data
    .to_f64()
}

#[test]
fn cube_of_seven_bits_with_majority_matches_the_golden_system() {
    let d = boolean::cube(7, Some(&BoolTarget::Majority)).unwrap();
    assert_eq!((d.len(), d.dim()), (128, 7));
    let x: Vec<f64> = d.features().iter().map(|&v| f64::from(v)).collect();
    assert_eq!(x, fixture("bool_x.npy"));
    let y: Vec<f64> = d.labels().unwrap().iter().map(|&v| f64::from(v)).collect();
    assert_eq!(y, fixture("bool_y.npy"));
}
