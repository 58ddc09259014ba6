//! The blocking [`Server`]: [`crate::Server::run`] on the calling thread.

use super::{inside_a_runtime, runtime};
use crate::{Result, ServerHandle, ServerStats};

/// A server for plain threads: [`run`](Self::run) blocks until the server
/// is shut down through its [`handle`](Self::handle), from any thread.
/// Build it as [`crate::Server`], with every option, then wrap it:
///
/// ```
/// use redisrpc::backend::Memory;
/// use redisrpc::service::Methods;
///
/// let echo = Methods::new(()).method("echo", &["x"], |_, (x,): (i64,)| async move { Ok::<_, String>(x) });
/// let server = redisrpc::blocking::Server::from(redisrpc::Server::new(Memory::new(), "echo", echo));
/// let handle = server.handle();
/// let running = std::thread::spawn(move || server.run());
/// handle.shutdown();
/// running.join().unwrap().unwrap();
/// ```
pub struct Server {
    inner: crate::Server,
}

impl Server {
    /// A handle that stops the server (from any thread) and reads its
    /// counters.
    pub fn handle(&self) -> ServerHandle {
        self.inner.handle()
    }

    /// Serves until the handle shuts the server down, then returns its
    /// counters; see [`crate::Server::run`]. The calls run on the
    /// blocking API's [`runtime`], so a handler may be `async` and call
    /// other services.
    pub fn run(self) -> Result<ServerStats> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(inside_a_runtime("Server::run"));
        }
        runtime().block_on(self.inner.run())
    }
}

impl From<crate::Server> for Server {
    fn from(inner: crate::Server) -> Self {
        Server { inner }
    }
}
