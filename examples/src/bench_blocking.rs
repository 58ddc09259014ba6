//! `bench --blocking`: the blocking API's calls beside the async API's, one
//! at a time, in the same rounds.
//!
//! A call from a plain thread must wake the server's threads and be woken
//! by them, which a call from the server's own runtime need not: its task
//! and the server's share two hot worker threads. So the blocking figure is
//! set beside two async ones: a client on the runtime that serves (the
//! bench's usual place), and a client on a thread of its own, with a
//! single-threaded runtime and connections of its own, which is where a
//! plain thread's call starts from. The first difference is where the call
//! starts; the second is what the blocking API costs.
//!
//! The three take turns, in rounds, each round in another order, so that
//! each sees the same busy machine; on a shared 2-core machine a minute's
//! noise moves every figure by a factor.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use redisrpc::Client;
use redisrpc::backend::SharedBackend;

use crate::measure::Latencies;

/// How many rounds the calls are cut into.
const ROUNDS: usize = 10;

/// The figures of one comparison.
pub struct Figures {
    /// Through the blocking API, from a plain thread.
    pub blocking: Latencies,
    /// Through the async API, from a task on the runtime that serves.
    pub async_beside_server: Latencies,
    /// Through the async API, from a thread of its own.
    pub async_own_thread: Latencies,
}

/// Makes `calls` calls of `add(2.5)` on `queue` through each API (after a
/// warm-up), one at a time, and returns their latencies. Call from the
/// runtime the server runs on.
pub async fn run(
    backend: SharedBackend,
    queue: &str,
    timeout: Option<Duration>,
    calls: usize,
) -> anyhow::Result<Figures> {
    let warm_up = calls.min(1_000) / 10;
    let per_round = calls.div_ceil(ROUNDS);
    let mut blocking = Caller::start("blocking", {
        let client = redisrpc::blocking::Client::new(backend.clone(), queue).with_timeout(timeout);
        move |requests, replies| blocking_caller(&client, warm_up, requests, replies)
    });
    let mut own_thread = Caller::start("async-own-thread", {
        let (backend, queue) = (backend.clone(), queue.to_owned());
        move |requests, replies| own_thread_caller(backend, &queue, timeout, warm_up, requests, replies)
    });
    let beside = Client::new(backend, queue).with_timeout(timeout);
    sequential(&beside, warm_up).await?;

    let mut figures = Figures {
        blocking: Latencies::default(),
        async_beside_server: Latencies::default(),
        async_own_thread: Latencies::default(),
    };
    let mut left = calls;
    for round in 0..ROUNDS {
        let count = per_round.min(left);
        left -= count;
        for turn in 0..3 {
            match (round + turn) % 3 {
                0 => figures.blocking.merge(&blocking.calls(count).await?),
                1 => figures.async_own_thread.merge(&own_thread.calls(count).await?),
                _ => {
                    let client = beside.clone();
                    let latencies = tokio::spawn(async move { sequential(&client, count).await }).await??;
                    figures.async_beside_server.merge(&latencies);
                }
            }
        }
    }
    Ok(figures)
}

/// `count` calls, one after the other.
async fn sequential(client: &Client, count: usize) -> anyhow::Result<Latencies> {
    let mut latencies = Latencies::default();
    for _ in 0..count {
        let started = Instant::now();
        let value: f64 = client.call("add", (2.5,)).await?;
        latencies.record(started.elapsed());
        anyhow::ensure!(value.is_finite(), "unexpected reply {value}");
    }
    Ok(latencies)
}

fn blocking_caller(
    client: &redisrpc::blocking::Client,
    warm_up: usize,
    requests: mpsc::Receiver<usize>,
    replies: tokio::sync::mpsc::UnboundedSender<anyhow::Result<Latencies>>,
) -> anyhow::Result<()> {
    let call = || -> anyhow::Result<Duration> {
        let started = Instant::now();
        let value: f64 = client.call("add", (2.5,))?;
        anyhow::ensure!(value.is_finite(), "unexpected reply {value}");
        Ok(started.elapsed())
    };
    for _ in 0..warm_up {
        call().context("warm-up call")?;
    }
    for count in requests {
        let mut latencies = Latencies::default();
        let batch = (0..count).try_for_each(|_| call().map(|took| latencies.record(took)));
        if replies.send(batch.map(|()| latencies)).is_err() {
            break;
        }
    }
    Ok(())
}

fn own_thread_caller(
    backend: SharedBackend,
    queue: &str,
    timeout: Option<Duration>,
    warm_up: usize,
    requests: mpsc::Receiver<usize>,
    replies: tokio::sync::mpsc::UnboundedSender<anyhow::Result<Latencies>>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        // Connections of this thread's runtime, as a blocking caller has.
        let own = backend.connect_anew().await?.unwrap_or(backend);
        let client = Client::new(own, queue).with_timeout(timeout);
        sequential(&client, warm_up).await.context("warm-up call")?;
        // Waiting here for the next round stalls nothing: between rounds
        // this runtime has nothing to do.
        for count in requests.iter() {
            if replies.send(sequential(&client, count).await).is_err() {
                break;
            }
        }
        Ok(())
    })
}

/// A thread that makes the calls of each round it is sent.
struct Caller {
    requests: mpsc::Sender<usize>,
    replies: tokio::sync::mpsc::UnboundedReceiver<anyhow::Result<Latencies>>,
    name: &'static str,
}

impl Caller {
    fn start<F>(name: &'static str, body: F) -> Caller
    where
        F: FnOnce(
                mpsc::Receiver<usize>,
                tokio::sync::mpsc::UnboundedSender<anyhow::Result<Latencies>>,
            ) -> anyhow::Result<()>
            + Send
            + 'static,
    {
        let (requests, received) = mpsc::channel();
        let (replies, answers) = tokio::sync::mpsc::unbounded_channel();
        let failures = replies.clone();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                if let Err(error) = body(received, replies) {
                    let _ = failures.send(Err(error));
                }
            })
            .expect("a thread for the calls starts");
        Caller {
            requests,
            replies: answers,
            name,
        }
    }

    /// Makes `count` calls on the thread and returns their latencies.
    async fn calls(&mut self, count: usize) -> anyhow::Result<Latencies> {
        self.requests
            .send(count)
            .with_context(|| format!("the {} caller stopped", self.name))?;
        match self.replies.recv().await {
            Some(latencies) => latencies,
            None => anyhow::bail!("the {} caller stopped", self.name),
        }
    }
}
