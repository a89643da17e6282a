//! Running the example server (`passthroughfs`) as a child process: for its kernel tests, the
//! demo and the benchmarks. The child is stopped with SIGINT and its mount removed on drop,
//! whatever happened.

use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::UnmountOnDrop;

/// A running `passthroughfs` child and its mount.
#[derive(Debug)]
pub struct ExampleServer {
    child: Option<Child>,
    mountpoint: PathBuf,
    /// The `ready:` line it printed (transport, passthrough, ...).
    pub ready: String,
    stdout: Option<mpsc::Receiver<String>>,
    _guard: UnmountOnDrop,
}

impl ExampleServer {
    /// Starts `binary SOURCE MOUNTPOINT ARGS...` and waits (up to 30 s) for its `ready:` line.
    pub fn start(
        binary: &Path,
        source: &Path,
        mountpoint: &Path,
        args: &[&str],
    ) -> io::Result<ExampleServer> {
        Self::start_with_env(binary, source, mountpoint, args, &[])
    }

    /// [`ExampleServer::start`] with extra environment variables for the child (for example
    /// the example's fault-injection switches).
    pub fn start_with_env(
        binary: &Path,
        source: &Path,
        mountpoint: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> io::Result<ExampleServer> {
        let mut child = Command::new(binary)
            .args(args)
            .envs(env.iter().copied())
            .arg(source)
            .arg(mountpoint)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let guard = UnmountOnDrop(mountpoint.to_owned());
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = ExampleServer {
            child: Some(child),
            mountpoint: mountpoint.to_owned(),
            ready: String::new(),
            stdout: Some(rx),
            _guard: guard,
        };
        let rx = server
            .stdout
            .as_ref()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.starts_with("ready:") => {
                server.ready = line;
                Ok(server)
            }
            other => {
                let stderr = server.stop_and_collect_stderr();
                Err(io::Error::other(format!(
                    "passthroughfs did not become ready ({other:?}); stderr: {stderr}"
                )))
            }
        }
    }

    /// The mount point.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// A `key=value` field of the ready line.
    pub fn ready_field(&self, key: &str) -> Option<&str> {
        self.ready
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn stop_and_collect_stderr(&mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return String::new();
        };
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::INT,
        );
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let _ = child.wait();
        err
    }

    /// Stops the server with SIGINT and returns (exit success, stdout after the ready line,
    /// stderr).
    pub fn stop(mut self) -> io::Result<(bool, String, String)> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| io::Error::other("already stopped"))?;
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::INT,
        )?;
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            e.read_to_string(&mut err)?;
        }
        let status = child.wait()?;
        let mut out = String::new();
        if let Some(rx) = self.stdout.take() {
            while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        Ok((status.success(), out, err))
    }
}

impl Drop for ExampleServer {
    fn drop(&mut self) {
        let _ = self.stop_and_collect_stderr();
    }
}

/// Reads `stats: KEY: VALUE` from the `--stats` output.
pub fn stat_value(stats: &str, key: &str) -> Option<u64> {
    stats.lines().find_map(|l| {
        l.strip_prefix("stats: ")?
            .strip_prefix(key)?
            .strip_prefix(": ")?
            .trim()
            .parse()
            .ok()
    })
}
