//! The server `bench` calls: one trivial method, in the bench's own
//! process or, with `--server-process`, in a process of its own, the shape
//! of a real deployment (client and server then share no runtime, no
//! connection and no allocator).

use std::convert::Infallible;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use redisrpc::Client;
use redisrpc::backend::SharedBackend;
use redisrpc::service::Methods;
use redisrpc::{Delivery, Server};

/// The server of `add(number)`, which returns its argument, taking up to
/// `concurrency` calls at once.
pub fn echo(backend: SharedBackend, queue: &str, concurrency: usize, delivery: Delivery) -> Server {
    let echo = Methods::new(()).method("add", &["number"], |_, (number,): (f64,)| async move {
        Ok::<_, Infallible>(number)
    });
    Server::new(backend, queue.to_owned(), echo)
        .with_concurrency(concurrency)
        .with_delivery(delivery)
}

/// Makes `calls` calls of [`echo`]'s `add` through `client`, `concurrency`
/// at a time, each checked.
pub async fn call_echo(client: Client, calls: usize, concurrency: usize) -> anyhow::Result<crate::measure::Run> {
    crate::measure::spread(calls, concurrency, move |_, _| {
        let client = client.clone();
        async move {
            let value: f64 = client.call("add", (2.5,)).await?;
            anyhow::ensure!(value.is_finite(), "unexpected reply {value}");
            anyhow::Ok(())
        }
    })
    .await
}

/// Serves [`echo`] until this process's standard input closes: the parent
/// holds the other end, so the server ends with it, whatever ends it.
pub async fn serve_until_stdin_closes(server: Server) -> anyhow::Result<()> {
    let handle = server.handle();
    let serving = tokio::spawn(server.run());
    stdin_closed().await?;
    handle.shutdown();
    serving.await??;
    Ok(())
}

/// Returns once this process's standard input is closed: a server process
/// started by [`ServerProcess`] stops then.
pub async fn stdin_closed() -> anyhow::Result<()> {
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await?;
    Ok(())
}

/// A server process: this very program, started with `args`, serving until
/// dropped.
pub struct ServerProcess {
    child: Child,
}

impl ServerProcess {
    /// Starts `std::env::current_exe()` with `args`.
    pub fn start(args: &[String]) -> anyhow::Result<ServerProcess> {
        let program = std::env::current_exe().context("finding this program to start its server")?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .context("starting the server process")?;
        Ok(ServerProcess { child })
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Closing its input asks it to stop; it has a few seconds.
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
