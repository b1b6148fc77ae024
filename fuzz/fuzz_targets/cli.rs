//! Fuzzes the command line: an argument vector (NUL-separated words) goes through clap and the
//! checks every command makes of its flags before it reads input (sizes, counts, the memory
//! they need); any vector gives a command or an error, never a panic. Nothing runs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let argv = std::iter::once("basin").chain(text.split('\0'));
    let _ = basin::check_args(argv);
});
