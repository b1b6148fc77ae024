//! Helpers shared by the lab's integration tests.

/// A CIFAR-10 binary directory with `per_file` records per batch: classes cycle through
/// automobile (1), cat (3) and a dropped class (5); cars are redder than cats, plus noise.
pub fn synthetic_cifar(dir: &std::path::Path, per_file: usize) {
    use basin_data::cifar;
    let mut state = 12345u64;
    let mut noise = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 58) as u8
    };
    for f in cifar::TRAIN_FILES.iter().chain([cifar::TEST_FILE].iter()) {
        let labels: Vec<u8> = (0..per_file).map(|i| [1u8, 3, 5][i % 3]).collect();
        let mut pixels = Vec::with_capacity(per_file * cifar::IMAGE_BYTES);
        for &l in &labels {
            for c in 0..3 {
                let base: u8 = if (l == 1) == (c == 0) { 160 } else { 90 };
                for _ in 0..cifar::IMAGE_BYTES / 3 {
                    pixels.push(base + noise());
                }
            }
        }
        std::fs::write(dir.join(f), cifar::encode_batch(&labels, &pixels)).unwrap();
    }
}
