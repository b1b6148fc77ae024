//! Signals: SIGPIPE ends the program quietly; SIGINT, SIGTERM and SIGHUP clean up and exit;
//! SIGUSR1 asks a running experiment to stop between runs (the pre-timeout signal a Slurm
//! job array asks for with `--signal`), and exits like SIGTERM in every other command.

use std::sync::Mutex;

use basin_lab::exec::StopFlag;

/// The exit status of an experiment stopped between runs by SIGUSR1 (`EX_TEMPFAIL`): the
/// runs in progress were stored, and rerunning the same command resumes.
pub const STOPPED_EXIT: u8 = 75;

/// An experiment stopped between runs by SIGUSR1: `basin` exits with [`STOPPED_EXIT`].
#[derive(Debug, thiserror::Error)]
#[error("basin: {0}")]
pub struct StoppedEarly(pub String);

/// The stop flag of the experiment running now, if one is.
static GRACEFUL: Mutex<Option<StopFlag>> = Mutex::new(None);

/// Makes SIGUSR1 raise `flag` (instead of exiting) for as long as the returned guard lives.
pub fn stop_on_usr1(flag: &StopFlag) -> Graceful {
    *GRACEFUL.lock().unwrap_or_else(|e| e.into_inner()) = Some(flag.clone());
    Graceful(())
}

/// While it lives, SIGUSR1 stops the experiment between runs; dropped, SIGUSR1 exits again.
#[derive(Debug)]
pub struct Graceful(());

impl Drop for Graceful {
    fn drop(&mut self) {
        *GRACEFUL.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Restores the default action of SIGPIPE, so that `basin … | head` ends quietly when the
/// reader closes the pipe, as `cat` and ripgrep do, instead of failing on the next write.
#[cfg(target_os = "linux")]
pub fn die_quietly_on_closed_pipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The signals that basin waits for in a thread of its own.
#[cfg(target_os = "linux")]
const HANDLED: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGUSR1];

/// Blocks SIGINT, SIGTERM, SIGHUP and SIGUSR1 in every thread and waits for them in a thread
/// of their own. SIGUSR1 raises the running experiment's stop flag when there is one
/// ([`stop_on_usr1`]). Otherwise the thread runs the registered clean-up
/// ([`basin_data::cleanup`]) and exits with 128 + the signal's number, as the default
/// action's status reads to a shell. Called first in `main`, so that every later thread
/// inherits the mask.
#[cfg(target_os = "linux")]
pub fn clean_up_on_signals() {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before use; the mask is set
    // before any other thread exists.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in HANDLED {
            libc::sigaddset(&mut set, sig);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        set
    };
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || wait_for_signals(&set));
    if spawned.is_err() {
        // No handler thread: let the signals act by default again.
        // SAFETY: as above, still before any other thread exists.
        unsafe {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
}

/// Waits for the signals of `set` for ever: SIGUSR1 stops a running experiment gracefully,
/// every other signal (and SIGUSR1 with no experiment running) cleans up and exits.
#[cfg(target_os = "linux")]
fn wait_for_signals(set: &libc::sigset_t) -> ! {
    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` is an initialised signal set and `sig` a valid out-pointer.
        while unsafe { libc::sigwait(set, &mut sig) } != 0 {}
        if sig == libc::SIGUSR1 && request_graceful_stop() {
            continue;
        }
        basin_data::cleanup::run_and_exit(128 + sig)
    }
}

/// Raises the running experiment's stop flag; false when no experiment is running.
#[cfg(target_os = "linux")]
fn request_graceful_stop() -> bool {
    let graceful = GRACEFUL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(flag) = graceful.as_ref() else {
        return false;
    };
    if !flag.is_requested() {
        eprintln!(
            "basin: SIGUSR1: finishing the runs in progress, then exiting with status \
             {STOPPED_EXIT}; rerun the same command to resume"
        );
    }
    flag.request();
    true
}
