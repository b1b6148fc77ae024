//! Clean-up on interruption: a registry of actions (removing a temporary file, a folder a
//! failed run created) that a signal handler runs before the process exits.
//!
//! A writer registers its action before it creates what the action removes, and drops the
//! [`Registered`] handle once the thing is committed or removed. The binary's signal-handling
//! thread calls [`run_and_exit`] on SIGINT or SIGTERM: the actions run, newest first, and the
//! process exits while the registry stays locked, so nothing registers after the clean-up.
//! What a kill -9 leaves behind is swept by the next run ([`crate::atomic::sweep_stale`]).

use std::sync::{Mutex, MutexGuard, PoisonError};

/// A clean-up action.
type Action = Box<dyn FnOnce() + Send>;

/// The live actions, each with its registration number.
struct Registry {
    next: u64,
    actions: Vec<(u64, Action)>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: 0,
    actions: Vec::new(),
});

/// The registry, locked (an action never panics under the lock, so poisoning is ignored).
fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A registered action; dropping the handle unregisters it without running it.
#[derive(Debug)]
#[must_use = "dropping the handle unregisters the action"]
pub struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        registry().actions.retain(|(id, _)| *id != self.0);
    }
}

/// Registers `action`, to run if the process is interrupted while the handle lives.
pub fn on_interrupt(action: impl FnOnce() + Send + 'static) -> Registered {
    let mut reg = registry();
    let id = reg.next;
    reg.next += 1;
    reg.actions.push((id, Box::new(action)));
    Registered(id)
}

/// The number of live registrations.
pub fn live() -> usize {
    registry().actions.len()
}

/// Runs every registered action, newest first, then exits the process with `code`, the
/// registry still locked, so that no writer registers (and creates) anything after the
/// clean-up.
pub fn run_and_exit(code: i32) -> ! {
    let mut reg = registry();
    while let Some((_, action)) = reg.actions.pop() {
        action();
    }
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_live(handle: &Registered) -> bool {
        registry().actions.iter().any(|(id, _)| *id == handle.0)
    }

    #[test]
    fn dropping_the_handle_unregisters_without_running() {
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let handle = on_interrupt(move || flag.store(true, std::sync::atomic::Ordering::SeqCst));
        assert!(is_live(&handle));
        let id = handle.0;
        drop(handle);
        assert!(registry().actions.iter().all(|(i, _)| *i != id));
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }
}
