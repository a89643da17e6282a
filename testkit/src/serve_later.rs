//! Server threads started after the mount: for tests that need the mounted, initialised fd
//! before the handler can be built (passthrough backing ids), or that serve on a clone of
//! the session fd (`FUSE_DEV_IOC_CLONE`).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use crate::{Handler, InitOptions, Session, serve};

impl Session {
    /// Starts the session's server thread: `handler` answers the requests read from `dev`,
    /// which is the session's own fd ([`Session::dev`]) or another `/dev/fuse` fd attached to
    /// the same connection (a clone).
    ///
    /// For sessions made with [`Session::mount_only`]: the test first does what needs the
    /// mounted and initialised fd (for example registering passthrough backing files, whose
    /// ids the handler must know), then starts serving. Until then no request is answered, so
    /// nothing may touch the mount. The thread counts into [`Session::counters`] and is
    /// stopped and joined by [`Session::finish`] or drop, like the one of [`Session::start`].
    ///
    /// Fails with `AlreadyExists` if the session already has a server thread.
    pub fn spawn_server(&mut self, dev: Arc<OwnedFd>, handler: impl Handler) -> io::Result<()> {
        if self.server.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "this session already has a server thread",
            ));
        }
        let counters = self.counters.clone();
        let mut handler = handler;
        let server = std::thread::Builder::new()
            .name("testkit-server".into())
            .spawn(move || serve(dev.as_fd(), &mut handler, &counters))?;
        self.server = Some(server);
        Ok(())
    }
}

impl InitOptions {
    /// The default options plus `FUSE_PASSTHROUGH` (kept where the kernel offers it, 6.9+)
    /// with this `max_stack_depth` (1 or 2; the kernel refuses passthrough otherwise).
    /// No writeback cache, which would also disable passthrough.
    pub fn passthrough(max_stack_depth: u32) -> InitOptions {
        let default = InitOptions::default();
        InitOptions {
            want: default.want | fuse_wire::init_flags::PASSTHROUGH,
            max_stack_depth,
            ..default
        }
    }
}
