//! The requests in flight, by `unique`: what INTERRUPT needs to find them.
//!
//! A request answered in place (the common case) occupies its thread's [`Slot`] while the
//! handler runs: one atomic store before and one after, no lock, no allocation. The slots are
//! allocated once, one per `/dev/fuse` worker and one per io_uring entry, so an INTERRUPT scans
//! a fixed array (interrupts are rare; requests are not). A deferred request leaves its slot
//! and moves into a locked table ([`Deferred`]), which costs an allocation: deferring is the
//! slow path by design. An INTERRUPT that arrives before its request is seen (the kernel may
//! hand it to another thread first) is kept in a short list that a starting request checks.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How many not-yet-seen INTERRUPTs are remembered (the oldest is forgotten first).
const PENDING_INTERRUPTS: usize = 64;

/// One request answered in place: its `unique` (0: free) and whether it was interrupted.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    unique: AtomicU64,
    interrupted: AtomicBool,
}

impl Slot {
    pub(crate) fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Acquire)
    }
}

/// A deferred request: answered once, from any thread, through `route` (where its answer
/// goes: the session's `Route`; tests use `()`).
#[derive(Debug)]
pub(crate) struct DeferredState<R> {
    pub(crate) unique: u64,
    pub(crate) route: R,
    interrupted: AtomicBool,
    answered: AtomicBool,
}

impl<R> DeferredState<R> {
    pub(crate) fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Acquire)
    }

    /// Claims the right to answer: true exactly once.
    pub(crate) fn claim(&self) -> bool {
        !self.answered.swap(true, Ordering::AcqRel)
    }
}

/// What an INTERRUPT found.
#[derive(Debug)]
pub(crate) enum Found<R> {
    /// A request answered in place: its slot is marked, its handler may look.
    InPlace,
    /// A deferred request, not answered yet: answer it `EINTR` (the caller does, through its
    /// route) — `claim` has been won for it.
    Deferred(Arc<DeferredState<R>>),
    /// A deferred request already answered, or nothing: remembered for a request that starts
    /// later, and the kernel is told `EAGAIN`.
    Nothing,
}

/// Every request in flight of one session.
#[derive(Debug)]
pub(crate) struct Inflight<R> {
    slots: Box<[Slot]>,
    deferred: Mutex<HashMap<u64, Arc<DeferredState<R>>>>,
    pending: Mutex<VecDeque<u64>>,
    pending_len: AtomicUsize,
    /// Bumped at every INTERRUPT; handlers waiting for theirs sleep on `woken`.
    generation: Mutex<u64>,
    woken: Condvar,
}

impl<R> Inflight<R> {
    pub(crate) fn new(slots: usize) -> Inflight<R> {
        Inflight {
            slots: (0..slots).map(|_| Slot::default()).collect(),
            deferred: Mutex::new(HashMap::new()),
            pending: Mutex::new(VecDeque::with_capacity(PENDING_INTERRUPTS)),
            pending_len: AtomicUsize::new(0),
            generation: Mutex::new(0),
            woken: Condvar::new(),
        }
    }

    pub(crate) fn slot(&self, index: usize) -> &Slot {
        &self.slots[index]
    }

    /// A request starts in slot `index`.
    pub(crate) fn begin(&self, index: usize, unique: u64) {
        let slot = &self.slots[index];
        slot.interrupted.store(false, Ordering::Relaxed);
        slot.unique.store(unique, Ordering::Release);
        if self.pending_len.load(Ordering::Acquire) > 0 && self.take_pending(unique) {
            slot.interrupted.store(true, Ordering::Release);
        }
    }

    /// The request of slot `index` is answered (or deferred).
    pub(crate) fn end(&self, index: usize) {
        self.slots[index].unique.store(0, Ordering::Release);
    }

    /// The request of slot `index` becomes deferred: it moves to the table.
    pub(crate) fn defer(&self, index: usize, unique: u64, route: R) -> Arc<DeferredState<R>> {
        let interrupted = self.slots[index].interrupted();
        let state = Arc::new(DeferredState {
            unique,
            route,
            interrupted: AtomicBool::new(interrupted),
            answered: AtomicBool::new(false),
        });
        lock(&self.deferred).insert(unique, state.clone());
        state
    }

    /// A deferred request was answered: it leaves the table.
    pub(crate) fn forget_deferred(&self, unique: u64) {
        lock(&self.deferred).remove(&unique);
    }

    /// An INTERRUPT for `unique` arrived.
    pub(crate) fn interrupt(&self, unique: u64) -> Found<R> {
        let found = self.find(unique);
        if matches!(found, Found::Nothing) {
            let mut pending = lock(&self.pending);
            if !pending.contains(&unique) {
                if pending.len() == PENDING_INTERRUPTS {
                    pending.pop_front();
                }
                pending.push_back(unique);
                self.pending_len.store(pending.len(), Ordering::Release);
            }
        }
        *lock(&self.generation) += 1;
        self.woken.notify_all();
        found
    }

    fn find(&self, unique: u64) -> Found<R> {
        if unique == 0 {
            return Found::Nothing;
        }
        for slot in self.slots.iter() {
            if slot.unique.load(Ordering::Acquire) == unique {
                slot.interrupted.store(true, Ordering::Release);
                return Found::InPlace;
            }
        }
        let state = lock(&self.deferred).remove(&unique);
        match state {
            Some(state) => {
                state.interrupted.store(true, Ordering::Release);
                if state.claim() {
                    Found::Deferred(state)
                } else {
                    Found::Nothing
                }
            }
            None => Found::Nothing,
        }
    }

    fn take_pending(&self, unique: u64) -> bool {
        let mut pending = lock(&self.pending);
        let Some(at) = pending.iter().position(|u| *u == unique) else {
            return false;
        };
        pending.remove(at);
        self.pending_len.store(pending.len(), Ordering::Release);
        true
    }

    /// Sleeps until `interrupted()` is true or `timeout` passes; returns `interrupted()`.
    pub(crate) fn wait(&self, timeout: Duration, interrupted: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut generation = lock(&self.generation);
        loop {
            if interrupted() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            generation = match self.woken.wait_timeout(generation, left) {
                Ok((g, _)) => g,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// Locks, ignoring poison: every value behind these locks stays consistent across a panic
/// (each critical section is a single insert, remove or counter update).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupt_finds_the_slot_of_its_request() {
        let inflight = Inflight::<()>::new(3);
        inflight.begin(1, 42);
        assert!(matches!(inflight.interrupt(42), Found::InPlace));
        assert!(inflight.slot(1).interrupted());
        assert!(!inflight.slot(0).interrupted());
        inflight.end(1);
        // The next request in that slot starts uninterrupted.
        inflight.begin(1, 43);
        assert!(!inflight.slot(1).interrupted());
    }

    #[test]
    fn an_interrupt_before_its_request_is_kept_for_it() {
        let inflight = Inflight::<()>::new(1);
        assert!(matches!(inflight.interrupt(7), Found::Nothing));
        inflight.begin(0, 8);
        assert!(!inflight.slot(0).interrupted());
        inflight.end(0);
        inflight.begin(0, 7);
        assert!(inflight.slot(0).interrupted());
        inflight.end(0);
        // Taken once.
        inflight.begin(0, 7);
        assert!(!inflight.slot(0).interrupted());
    }

    #[test]
    fn pending_interrupts_are_bounded() {
        let inflight = Inflight::<()>::new(1);
        for u in 1..=(PENDING_INTERRUPTS as u64 + 10) {
            inflight.interrupt(u);
        }
        assert_eq!(lock(&inflight.pending).len(), PENDING_INTERRUPTS);
        // The oldest are gone, the newest kept.
        inflight.begin(0, 1);
        assert!(!inflight.slot(0).interrupted());
        inflight.begin(0, PENDING_INTERRUPTS as u64 + 10);
        assert!(inflight.slot(0).interrupted());
    }

    #[test]
    fn a_deferred_request_is_answered_once() {
        let inflight = Inflight::<()>::new(1);
        inflight.begin(0, 5);
        let state = inflight.defer(0, 5, ());
        inflight.end(0);
        let Found::Deferred(found) = inflight.interrupt(5) else {
            panic!("the deferred request is found");
        };
        assert!(found.interrupted());
        // The interrupt won the claim: the handler's later answer loses it.
        assert!(!state.claim());
        // And a second INTERRUPT finds nothing to answer.
        assert!(matches!(inflight.interrupt(5), Found::Nothing));
    }

    #[test]
    fn a_deferred_request_answered_first_is_not_answered_again() {
        let inflight = Inflight::<()>::new(1);
        inflight.begin(0, 9);
        let state = inflight.defer(0, 9, ());
        inflight.end(0);
        assert!(state.claim());
        assert!(matches!(inflight.interrupt(9), Found::Nothing));
    }

    #[test]
    fn wait_returns_when_interrupted_or_at_the_timeout() {
        let inflight = Arc::new(Inflight::<()>::new(1));
        inflight.begin(0, 11);
        let start = Instant::now();
        assert!(!inflight.wait(Duration::from_millis(30), || inflight.slot(0).interrupted()));
        assert!(start.elapsed() >= Duration::from_millis(30));
        let other = inflight.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            other.interrupt(11);
        });
        let start = Instant::now();
        assert!(inflight.wait(Duration::from_secs(10), || inflight.slot(0).interrupted()));
        assert!(start.elapsed() < Duration::from_secs(5));
        t.join().unwrap();
    }
}
