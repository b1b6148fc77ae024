//! Fuzzes the experiment spec parser: any text gives a spec or a typed error, never a panic,
//! and a spec that parses prints as TOML that parses back to itself.
#![no_main]

use basin_lab::spec::ExperimentSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(spec) = ExperimentSpec::from_toml(text, "fuzz.toml") {
        let again = toml::to_string(&spec).expect("a parsed spec prints");
        let back = ExperimentSpec::from_toml(&again, "fuzz.toml").expect("a printed spec parses");
        assert_eq!(toml::to_string(&back).expect("prints"), again);
    }
});
