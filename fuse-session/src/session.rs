//! [`Session`]: mount (or take a device), answer INIT, choose the transport, start its
//! threads, serve until the connection ends.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::{JoinHandle, Scope};
use std::time::Duration;

use fuse_dev::{Channel, Connection, Device, Mount, MountOptions};
use fuse_wire::init_flags;
use fuse_wire::{InitConfig, KernelInit};
use rustix::io::Errno;

use crate::dev::serve_channel;
use crate::error::Error;
use crate::handler::{Handler, ThreadCounts};
use crate::inflight::{Inflight, lock};
use crate::notify::{Notifier, NotifyReplies};
use crate::reply::Route;
use crate::uring::{QueueSetup, Ready, run_queue};

/// Which transport a session serves over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// FUSE-over-io_uring when the kernel offers it (Linux 6.14+ with `CONFIG_FUSE_IO_URING`
    /// and `/sys/module/fuse/parameters/enable_uring` set) and every queue can be set up;
    /// `/dev/fuse` otherwise. The default.
    #[default]
    Auto,
    /// FUSE-over-io_uring or nothing: [`Error::UringUnavailable`] when it cannot be had.
    Uring,
    /// `/dev/fuse` only, with [`Session::workers`] threads on cloned fds.
    Dev,
}

/// What one session served, returned by [`Session::serve`] and
/// [`SessionHandle::report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// [`Transport::Uring`] or [`Transport::Dev`]: what served the requests.
    pub transport: Transport,
    /// io_uring queues (0 over `/dev/fuse`).
    pub queues: usize,
    /// Threads reading `/dev/fuse` (1 with io_uring: FORGET, INTERRUPT and NOTIFY_REPLY come
    /// that way).
    pub dev_workers: usize,
    /// Requests seen, by opcode (`fuse_opcode`; opcodes above 62 are counted as 63), only
    /// those seen at least once, in opcode order.
    pub requests: Vec<(u32, u64)>,
    /// Replies the kernel refused (a payload of the wrong size for its request); each such
    /// request was answered `EIO` instead.
    pub refused_replies: u64,
}

/// Serves one FUSE connection: build it with [`Session::mount`] or [`Session::from_device`],
/// adjust it, then [`serve`](Session::serve) a [`Handler`] on the calling thread or
/// [`spawn`](Session::spawn) it.
///
/// # The order it follows
///
/// 1. read the kernel's INIT;
/// 2. if io_uring is wanted and offered: start one thread per queue (one queue per possible
///    CPU, pinned to it), each creating its own buffers (a buffer pool when the kernel
///    offers one, 7.46) and its own ring (single issuer, deferred task work) — nothing is
///    registered yet, because the kernel refuses REGISTER before INIT is answered;
/// 3. only if every queue is ready, agree `FUSE_OVER_IO_URING`; else (with
///    [`Transport::Auto`]) end those threads and serve `/dev/fuse`;
/// 4. call [`Handler::init`], answer INIT;
/// 5. let the queues register (the kernel holds new requests until every queue has), or
///    clone the `/dev/fuse` fd for each worker;
/// 6. serve on every thread, the calling one included, until the connection ends. A queue
///    that fails after INIT aborts the connection, since the kernel would keep routing
///    requests to it.
#[derive(Debug)]
pub struct Session {
    device: Device,
    control: Arc<Control>,
    transport: Transport,
    workers: Option<usize>,
    queue_depth: u32,
    pin: bool,
    init: InitConfig,
    stop_on_signals: bool,
}

/// What the session's handle and its threads share.
#[derive(Debug)]
struct Control {
    mount: Mutex<Option<Mount>>,
    connection: Option<Connection>,
    state: Mutex<State>,
    changed: Condvar,
    notifier: OnceLock<Notifier>,
    shared: OnceLock<Arc<Shared>>,
    grace: Mutex<Duration>,
}

#[derive(Debug, Default)]
struct State {
    ready: bool,
    ended: bool,
    stopping: bool,
}

impl Control {
    fn set(&self, f: impl FnOnce(&mut State)) {
        f(&mut lock(&self.state));
        self.changed.notify_all();
    }

    fn abort(&self) {
        if let Some(connection) = &self.connection {
            let _ = connection.abort();
        }
    }
}

/// What every transport thread of a running session uses.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) inflight: Arc<Inflight<Route>>,
    pub(crate) notify_replies: Arc<NotifyReplies>,
    counts: Box<[ThreadCounts]>,
    refused: AtomicU64,
    transport: Transport,
    queues: usize,
    dev_workers: usize,
}

impl Shared {
    pub(crate) fn new(
        slots: usize,
        transport: Transport,
        queues: usize,
        dev_workers: usize,
    ) -> Shared {
        Shared {
            inflight: Arc::new(Inflight::new(slots)),
            notify_replies: Arc::new(NotifyReplies::default()),
            counts: (0..slots).map(|_| ThreadCounts::default()).collect(),
            refused: AtomicU64::new(0),
            transport,
            queues,
            dev_workers,
        }
    }

    pub(crate) fn counts(&self, slot: usize) -> &ThreadCounts {
        &self.counts[slot.min(self.counts.len() - 1)]
    }

    pub(crate) fn count_refused_reply(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    fn report(&self) -> Report {
        let mut by_opcode = [0u64; 64];
        for counts in self.counts.iter() {
            for (sum, c) in by_opcode.iter_mut().zip(counts.by_opcode.iter()) {
                *sum += c.load(Ordering::Relaxed);
            }
        }
        Report {
            transport: self.transport,
            queues: self.queues,
            dev_workers: self.dev_workers,
            requests: (0u32..).zip(by_opcode).filter(|(_, n)| *n > 0).collect(),
            refused_replies: self.refused.load(Ordering::Relaxed),
        }
    }
}

/// Controls a session from other threads: stop it, send notifications, read its counters.
/// `Clone`, `Send`, `Sync`; valid before, during and after [`Session::serve`].
#[derive(Debug, Clone)]
pub struct SessionHandle {
    control: Arc<Control>,
}

impl SessionHandle {
    /// Ends the session: unmounts the session's mount (lazily: it leaves the tree now), and
    /// if the connection has not ended within the grace ([`Session::shutdown_grace`], 2 s by
    /// default: open files keep a lazily unmounted connection alive) aborts it through the
    /// fusectl file system, so that `serve` returns in bounded time. Returns at once; a
    /// short-lived thread enforces the grace.
    ///
    /// # Errors
    ///
    /// [`Error::Mount`] when unmounting fails (`EPERM`): the connection is then aborted at
    /// once. A session made from a device without a mount or a connection cannot be stopped
    /// from here: [`Error::Io`] with `Unsupported` (stop it by unmounting it).
    pub fn stop(&self) -> Result<(), Error> {
        let control = &self.control;
        control.set(|s| s.stopping = true);
        let mount = lock(&control.mount).take();
        if mount.is_none() && control.connection.is_none() {
            return Err(Error::io(
                "stop",
                std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "a session without its mount or fusectl connection",
                ),
            ));
        }
        if let Some(mut mount) = mount {
            if let Err(e) = mount.unmount() {
                control.abort();
                return Err(Error::Mount(e));
            }
        }
        let grace = *lock(&control.grace);
        let control = control.clone();
        let spawned = std::thread::Builder::new()
            .name("fuse-session-stop".into())
            .spawn(move || {
                let state = lock(&control.state);
                let (state, _) = control
                    .changed
                    .wait_timeout_while(state, grace, |s| !s.ended)
                    .unwrap_or_else(|p| p.into_inner());
                if !state.ended {
                    drop(state);
                    control.abort();
                }
            });
        if spawned.is_err() {
            self.control.abort();
        }
        Ok(())
    }

    /// The session's notifier, once INIT is answered (`None` before).
    pub fn notifier(&self) -> Option<Notifier> {
        self.control.notifier.get().cloned()
    }

    /// Waits up to `timeout` for INIT to be answered and every transport thread to be
    /// serving; true if so, false on timeout or when the session ended first.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let state = lock(&self.control.state);
        let (state, _) = self
            .control
            .changed
            .wait_timeout_while(state, timeout, |s| !s.ready && !s.ended)
            .unwrap_or_else(|p| p.into_inner());
        state.ready && !state.ended
    }

    /// What the session has served so far (`None` before INIT is answered).
    pub fn report(&self) -> Option<Report> {
        self.control.shared.get().map(|shared| shared.report())
    }

    /// The fusectl connection (to read `waiting`, tune `max_background`), when known.
    pub fn connection(&self) -> Option<&Connection> {
        self.control.connection.as_ref()
    }
}

/// A session served on a thread of its own ([`Session::spawn`]). Dropping it stops the
/// session and waits for its threads.
#[derive(Debug)]
pub struct BackgroundSession {
    handle: SessionHandle,
    thread: Option<JoinHandle<Result<Report, Error>>>,
}

impl BackgroundSession {
    /// The session's handle.
    pub fn handle(&self) -> &SessionHandle {
        &self.handle
    }

    /// Stops the session ([`SessionHandle::stop`]) and waits for it to end.
    ///
    /// # Errors
    ///
    /// The session's own error, or [`Error::Io`] if its thread panicked.
    pub fn stop(self) -> Result<Report, Error> {
        let _ = self.handle.stop();
        self.join()
    }

    /// Waits for the session to end by itself (an unmount from outside).
    ///
    /// # Errors
    ///
    /// As [`BackgroundSession::stop`].
    pub fn join(mut self) -> Result<Report, Error> {
        self.join_thread()
    }

    fn join_thread(&mut self) -> Result<Report, Error> {
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(Error::io(
                "the session thread",
                std::io::Error::other("panicked"),
            )),
            None => Err(Error::io("join", std::io::Error::other("already joined"))),
        }
    }
}

impl Drop for BackgroundSession {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.handle.stop();
            let _ = self.join_thread();
        }
    }
}

const DEFAULT_QUEUE_DEPTH: u32 = 32;

impl Session {
    /// Mounts a FUSE file system on `mount_point` ([`Mount::auto`]: `mount(2)` as root,
    /// `fusermount3` otherwise) and returns the session that will serve it. The mount is
    /// the session's: unmounted when the session ends or is stopped.
    ///
    /// # Errors
    ///
    /// [`Error::Mount`] with the reason (`EPERM`, a mount point that is not an empty
    /// directory, `fusermount3` missing).
    pub fn mount(mount_point: &Path, options: &MountOptions) -> Result<Session, Error> {
        let (device, mount) = Mount::auto(mount_point, options)?;
        Ok(Session::from_device(device, Some(mount)))
    }

    /// A session on an opened and mounted `/dev/fuse` device whose INIT has not been read
    /// yet (for example an fd passed in by a privileged helper). With `mount`, the session
    /// unmounts it at the end and [`SessionHandle::stop`] works; without, the session ends
    /// when someone else unmounts.
    pub fn from_device(device: Device, mount: Option<Mount>) -> Session {
        let connection = mount.as_ref().and_then(Mount::connection);
        Session {
            device,
            control: Arc::new(Control {
                mount: Mutex::new(mount),
                connection,
                state: Mutex::new(State::default()),
                changed: Condvar::new(),
                notifier: OnceLock::new(),
                shared: OnceLock::new(),
                grace: Mutex::new(Duration::from_secs(2)),
            }),
            transport: Transport::Auto,
            workers: None,
            queue_depth: DEFAULT_QUEUE_DEPTH,
            pin: true,
            init: InitConfig::default(),
            stop_on_signals: false,
        }
    }

    /// Stop the session on SIGINT, SIGTERM or SIGHUP ([`SessionHandle::stop`]; a second
    /// signal aborts the connection at once), so that a server killed politely never leaves
    /// a dead mount behind. Off by default.
    ///
    /// `serve` blocks these signals in its calling thread (the session's threads inherit
    /// that) and takes them on a thread of its own; call it from the main thread before any
    /// other thread is started, or block the signals in those threads too: a signal sent to
    /// the process is delivered to any thread that does not block it, and then kills the
    /// process as usual. The calling thread's signal mask is restored when `serve` returns.
    pub fn stop_on_signals(mut self, on: bool) -> Session {
        self.stop_on_signals = on;
        self
    }

    /// The transport ([`Transport::Auto`] by default).
    pub fn transport(mut self, transport: Transport) -> Session {
        self.transport = transport;
        self
    }

    /// Threads reading `/dev/fuse` when it is the transport (default: one per CPU the
    /// process may run on). At least 1.
    pub fn workers(mut self, workers: usize) -> Session {
        self.workers = Some(workers.max(1));
        self
    }

    /// Entries per io_uring queue: how many requests one queue holds at once, deferred
    /// ones included (default 32). At least 1.
    pub fn queue_depth(mut self, depth: u32) -> Session {
        self.queue_depth = depth.max(1);
        self
    }

    /// Pin the thread of queue `q` to CPU `q` (default: yes; the kernel queues the requests
    /// of CPU `q`'s tasks on queue `q`).
    pub fn pin_queues(mut self, pin: bool) -> Session {
        self.pin = pin;
        self
    }

    /// What to ask of the kernel in INIT (default: `InitConfig::default()`). The session adds
    /// `FUSE_OVER_IO_URING` itself when it serves over io_uring (and removes it otherwise).
    /// Some flags enable requests or behaviour: without `FUSE_DO_READDIRPLUS` no READDIRPLUS
    /// comes, without `FUSE_POSIX_ACL` no ACL is enforced by the kernel. The flags are
    /// `fuse_wire::init_flags` (`config.with(init_flags::DO_READDIRPLUS)`); the table of
    /// what each one does is in [`InitConfig`]'s documentation.
    pub fn init(mut self, config: InitConfig) -> Session {
        self.init = config;
        self
    }

    /// How long [`SessionHandle::stop`] waits for the connection to end before aborting it
    /// (default 2 s).
    pub fn shutdown_grace(self, grace: Duration) -> Session {
        *lock(&self.control.grace) = grace;
        self
    }

    /// The handle to stop the session and send notifications, for other threads.
    pub fn handle(&self) -> SessionHandle {
        SessionHandle {
            control: self.control.clone(),
        }
    }

    /// Serves `handler` on a new thread; returns once INIT is answered and every transport
    /// thread serves, so that the mount can be used at once.
    ///
    /// # Errors
    ///
    /// As [`Session::serve`] when the session ends before it is ready; [`Error::Io`] when
    /// the thread cannot be started.
    pub fn spawn<H: Handler>(self, handler: H) -> Result<BackgroundSession, Error> {
        let handle = self.handle();
        let thread = std::thread::Builder::new()
            .name("fuse-session".into())
            .spawn(move || self.serve(handler))
            .map_err(|e| Error::io("starting the session thread", e))?;
        let background = BackgroundSession {
            handle: handle.clone(),
            thread: Some(thread),
        };
        // INIT comes within the mount's first moments; a kernel that never sends it is a
        // kernel bug, and the long wait only delays the error.
        if handle.wait_ready(Duration::from_secs(60)) {
            Ok(background)
        } else {
            let mut background = background;
            match background.join_thread() {
                Ok(_) => Err(Error::Handshake(fuse_dev::HandshakeError::Closed)),
                Err(e) => Err(e),
            }
        }
    }

    /// Serves `handler` until the connection ends (unmounted, aborted, or
    /// [stopped](SessionHandle::stop)); every thread of the session has ended when it
    /// returns, and the session's mount is unmounted.
    ///
    /// # Errors
    ///
    /// [`Error::Handshake`] (no INIT, not a mounted device), [`Error::InitRefused`],
    /// [`Error::UringUnavailable`] (with [`Transport::Uring`]), [`Error::Queue`],
    /// [`Error::Channel`], [`Error::Io`]. After INIT, an error aborts the connection.
    pub fn serve<H: Handler>(self, handler: H) -> Result<Report, Error> {
        let control = self.control.clone();
        let blocked = self.stop_on_signals.then(crate::signals::block);
        let result = std::thread::scope(|scope| {
            if let Some(blocked) = &blocked {
                let handle = self.handle();
                let spawned = std::thread::Builder::new()
                    .name("fuse-session-signals".into())
                    .spawn_scoped(scope, move || take_signals(blocked, &handle));
                if let Err(e) = spawned {
                    return Err(Error::io("starting the signal thread", e));
                }
            }
            let result = self.serve_inner(&handler);
            if result.is_err() {
                control.abort();
            }
            if let Some(mut mount) = lock(&control.mount).take() {
                let _ = mount.unmount();
            }
            control.set(|s| s.ended = true);
            result
        });
        if let Some(blocked) = blocked {
            blocked.restore();
        }
        result
    }

    fn serve_inner<H: Handler>(self, handler: &H) -> Result<Report, Error> {
        let Session {
            device,
            control,
            transport,
            workers,
            queue_depth,
            pin,
            init: config,
            stop_on_signals: _,
        } = self;
        // A second fd on the connection for the io_uring queues (they need the device only
        // to register) and for nothing else.
        let ring_dev: OwnedFd = device
            .try_clone()
            .map_err(|e| {
                Error::io(
                    "cloning /dev/fuse (FUSE_DEV_IOC_CLONE)",
                    std::io::Error::other(e),
                )
            })?
            .into_fd();
        let mut channel = Channel::new(device);
        let init = channel.read_init(&mut vec![0u8; fuse_dev::MIN_READ_BUFFER])?;
        let kernel = init.kernel;
        let workers = workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        });

        let queues = match transport {
            Transport::Dev => Err("the /dev/fuse transport was chosen".to_string()),
            _ => uring_queues(&kernel),
        };
        let with_uring = config.with(init_flags::OVER_IO_URING);
        let without_uring = config.without(init_flags::OVER_IO_URING);
        let refuse = |channel: &Channel, e: fuse_wire::InitError| {
            let _ = channel.refuse_init(&init, &e);
            Error::InitRefused(e)
        };

        std::thread::scope(|scope| {
            let mut first_error: Option<Error> = None;
            let mut threads = Vec::new();
            let mut started = None;
            if let Ok(qids) = &queues {
                let negotiated =
                    fuse_wire::negotiate(&kernel, &with_uring).map_err(|e| refuse(&channel, e))?;
                let shared = new_shared(qids.len() + 1, Transport::Uring, qids.len(), 1);
                let plan = QueuePlan {
                    depth: queue_depth,
                    payload: negotiated.uring_payload_size(),
                    offered: kernel.flags,
                    pin,
                    protocol: negotiated.protocol(),
                };
                match start_queues(scope, handler, &shared, &control, &ring_dev, qids, plan) {
                    Ok(queue_threads) => started = Some((negotiated, shared, queue_threads)),
                    Err(why) if transport == Transport::Uring => {
                        let _ = channel.reply_error(init.unique, Errno::NOSYS);
                        return Err(Error::UringUnavailable(why));
                    }
                    Err(_) => {}
                }
            } else if let (Err(why), Transport::Uring) = (&queues, transport) {
                let _ = channel.reply_error(init.unique, Errno::NOSYS);
                return Err(Error::UringUnavailable(why.clone()));
            }

            let (negotiated, shared, go) = match started {
                Some((negotiated, shared, (go, queue_threads))) => {
                    threads.extend(queue_threads);
                    (negotiated, shared, go)
                }
                None => {
                    let negotiated = fuse_wire::negotiate(&kernel, &without_uring)
                        .map_err(|e| refuse(&channel, e))?;
                    let shared = new_shared(workers, Transport::Dev, 0, workers);
                    (negotiated, shared, Vec::new())
                }
            };
            channel = Channel::with_negotiated(channel.into_device(), &negotiated);
            let _ = catch(|| handler.init(&negotiated));
            let answered = channel.reply_init(&init, &negotiated);
            for go in &go {
                let _ = go.send(answered.is_ok());
            }
            answered?;
            let channel = Arc::new(channel);
            let _ = control.notifier.set(Notifier::new(
                channel.clone(),
                shared.notify_replies.clone(),
            ));
            let _ = control.shared.set(shared.clone());

            if shared.transport == Transport::Dev {
                for slot in 1..workers {
                    let clone = match channel.try_clone() {
                        Ok(clone) => Arc::new(clone),
                        Err(e) => {
                            first_error.get_or_insert(Error::io(
                                "cloning /dev/fuse (FUSE_DEV_IOC_CLONE)",
                                std::io::Error::other(e),
                            ));
                            control.abort();
                            break;
                        }
                    };
                    let worker_shared = shared.clone();
                    let worker_control = control.clone();
                    let spawned = std::thread::Builder::new()
                        .name(format!("fuse-dev-{slot}"))
                        .spawn_scoped(scope, move || {
                            let r = serve_channel(handler, &worker_shared, &clone, slot);
                            if r.is_err() {
                                worker_control.abort();
                            }
                            r.map_err(Error::Channel)
                        });
                    match spawned {
                        Ok(t) => threads.push(t),
                        Err(e) => {
                            first_error.get_or_insert(Error::io("starting a /dev/fuse worker", e));
                            control.abort();
                            break;
                        }
                    }
                }
            }
            control.set(|s| s.ready = true);
            // The calling thread serves /dev/fuse too (with io_uring: what still comes
            // that way).
            if let Err(e) = serve_channel(handler, &shared, &channel, 0) {
                first_error.get_or_insert(Error::Channel(e));
                control.abort();
            }
            for thread in threads {
                match thread.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        first_error.get_or_insert(e);
                    }
                    Err(_) => {
                        first_error.get_or_insert(Error::io(
                            "a transport thread",
                            std::io::Error::other("panicked"),
                        ));
                    }
                }
            }
            match first_error {
                Some(e) => Err(e),
                None => Ok(shared.report()),
            }
        })
    }
}

/// The signal thread: stops the session at the first stop signal, aborts the connection at
/// the second, ends with the session.
fn take_signals(blocked: &crate::signals::Blocked, handle: &SessionHandle) {
    let mut seen = 0;
    while !lock(&handle.control.state).ended {
        if blocked.wait(Duration::from_millis(100)).is_some() {
            seen += 1;
            if seen == 1 {
                let _ = handle.stop();
            } else {
                handle.control.abort();
            }
        }
    }
}

fn catch<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
}

fn new_shared(
    slots: usize,
    transport: Transport,
    queues: usize,
    dev_workers: usize,
) -> Arc<Shared> {
    Arc::new(Shared {
        inflight: Arc::new(Inflight::new(slots)),
        notify_replies: Arc::new(NotifyReplies::default()),
        counts: (0..slots).map(|_| ThreadCounts::default()).collect(),
        refused: AtomicU64::new(0),
        transport,
        queues,
        dev_workers,
    })
}

/// The queue ids to serve over io_uring, or why not.
fn uring_queues(kernel: &KernelInit) -> Result<Vec<u16>, String> {
    if !kernel.offers(init_flags::OVER_IO_URING) {
        return Err(
            "the kernel does not offer FUSE_OVER_IO_URING (Linux 6.14+ with \
                    CONFIG_FUSE_IO_URING; as root: echo Y > \
                    /sys/module/fuse/parameters/enable_uring)"
                .into(),
        );
    }
    fuse_uring::check_init(kernel).map_err(|e| e.to_string())?;
    let qids: Vec<u16> = fuse_uring::queue_ids()
        .map_err(|e| format!("cannot list the possible CPUs: {e}"))?
        .collect();
    if qids.is_empty() {
        return Err("no possible CPUs listed".into());
    }
    Ok(qids)
}

/// What every queue of a session shares.
#[derive(Debug, Clone, Copy)]
struct QueuePlan {
    depth: u32,
    payload: usize,
    offered: u64,
    pin: bool,
    protocol: fuse_wire::Protocol,
}

type Thread<'scope> = std::thread::ScopedJoinHandle<'scope, Result<(), Error>>;

/// Starts the queue threads and waits until each has its ring and buffers. `Ok`: the
/// senders that let them register (after INIT is answered) and their threads. `Err`: why
/// one could not be set up; every thread has ended.
fn start_queues<'scope, 'env, H: Handler>(
    scope: &'scope Scope<'scope, 'env>,
    handler: &'env H,
    shared: &Arc<Shared>,
    control: &Arc<Control>,
    ring_dev: &'env OwnedFd,
    qids: &[u16],
    plan: QueuePlan,
) -> Result<(Vec<mpsc::Sender<bool>>, Vec<Thread<'scope>>), String> {
    let (ready_tx, ready_rx) = mpsc::channel::<(u16, Ready)>();
    let mut gos = Vec::with_capacity(qids.len());
    let mut threads = Vec::with_capacity(qids.len());
    let mut failure = None;
    for (i, &qid) in qids.iter().enumerate() {
        let (go_tx, go_rx) = mpsc::channel::<bool>();
        let setup = QueueSetup {
            qid,
            depth: plan.depth,
            payload: plan.payload,
            offered: plan.offered,
            pin: plan.pin,
            protocol: plan.protocol,
            slot: i + 1,
        };
        let shared = shared.clone();
        let control = control.clone();
        let ready_tx = ready_tx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("fuse-uring-{qid}"))
            .spawn_scoped(scope, move || {
                let ready = |r: Ready| {
                    let _ = ready_tx.send((qid, r));
                };
                let result = run_queue(handler, &shared, ring_dev, setup, ready, &go_rx);
                if result.is_err() {
                    control.abort();
                }
                result.map_err(|error| Error::Queue { qid, error })
            });
        match spawned {
            Ok(thread) => {
                gos.push(go_tx);
                threads.push(thread);
            }
            Err(e) => {
                failure = Some(format!("cannot start the thread of queue {qid}: {e}"));
                break;
            }
        }
    }
    drop(ready_tx);
    if failure.is_none() {
        for _ in 0..threads.len() {
            match ready_rx.recv() {
                Ok((_, Ok(()))) => {}
                Ok((qid, Err(e))) => {
                    failure = Some(format!("queue {qid}: {e}"));
                    break;
                }
                Err(_) => {
                    failure = Some("a queue thread ended before it was ready".into());
                    break;
                }
            }
        }
    }
    match failure {
        None => Ok((gos, threads)),
        Some(why) => {
            for go in &gos {
                let _ = go.send(false);
            }
            for thread in threads {
                let _ = thread.join();
            }
            Err(why)
        }
    }
}
