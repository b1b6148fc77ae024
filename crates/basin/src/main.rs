//! The `basin` binary: the command line of the `basin` library crate.

/// Large blocks on transparent huge pages ([`basin::huge_pages`]).
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: basin::huge_pages::HugePages = basin::huge_pages::HugePages;

fn main() -> std::process::ExitCode {
    basin::main()
}
