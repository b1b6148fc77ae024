//! The `basin` binary: the command line of the `basin` library crate.

/// Large blocks on transparent huge pages ([`basin_data::huge_pages`]).
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: basin_data::huge_pages::HugePages = basin_data::huge_pages::HugePages;

fn main() -> std::process::ExitCode {
    basin::main()
}
