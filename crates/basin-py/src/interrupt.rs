//! Long Rust calls with the GIL released, and Ctrl-C.
//!
//! The work runs on a scoped worker thread while the calling thread, the GIL released, waits
//! for it and every 50 ms takes the GIL back to let Python run its signal handlers. On Ctrl-C
//! (a pending `KeyboardInterrupt`) the stop flag is raised, so that work that watches it (the
//! training loop, an experiment's workers) ends early; the call then raises the
//! `KeyboardInterrupt` once the worker has returned.

use std::sync::mpsc;
use std::time::Duration;

use basin_lab::exec::StopFlag;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// How often the waiting thread looks for a pending signal.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Runs `work(stop)` without the GIL on a worker thread, raising `KeyboardInterrupt` (after
/// raising `stop`) if Python receives Ctrl-C meanwhile.
pub fn interruptible<R: Send>(
    py: Python<'_>,
    work: impl FnOnce(&StopFlag) -> R + Send,
) -> PyResult<R> {
    let stop = StopFlag::default();
    py.detach(|| {
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::channel();
            let worker_stop = stop.clone();
            let worker = scope.spawn(move || {
                let result = work(&worker_stop);
                // The receiver waits until the result comes; a send cannot fail before.
                let _ = tx.send(());
                result
            });
            let mut interrupt = None;
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(SIGNAL_POLL) {
                if interrupt.is_none()
                    && let Err(e) = Python::attach(|py| py.check_signals())
                {
                    stop.request();
                    interrupt = Some(e);
                }
            }
            let result = worker.join().map_err(|_| {
                PyRuntimeError::new_err("basin's worker thread panicked; please report this")
            })?;
            match interrupt {
                Some(e) => Err(e),
                None => Ok(result),
            }
        })
    })
}
