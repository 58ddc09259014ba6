//! The dedicated connection of a blocking pop over plain TCP or a Unix
//! socket, driven by the task that pops.
//!
//! A pop's connection carries one command (or pipeline) at a time, and its
//! caller waits for the answer. The redis crate's multiplexed connection
//! would put a task of its own between them, with a channel each way: the
//! caller wakes that task to write, and the task wakes the caller with the
//! reply, often across threads. Here the caller writes the command and reads
//! the reply itself, so the reply wakes the task that waits for it and
//! nothing else. TLS connections keep the crate's connection (see
//! `blocking.rs`).
//!
//! It speaks RESP2 (`resp.rs` reads it), authenticates and selects the
//! database as the URL says, and is a `ConnectionLike`, so commands,
//! scripts and pipelines are sent to it as to any other connection.
//! Transactions are not needed on a pop's connection and are refused.

use std::io;
use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
#[cfg(unix)]
use tokio::net::UnixStream;

use super::resp;

/// How many bytes a read asks for at least.
const READ_CHUNK: usize = 16 * 1024;

/// A connection that the task using it drives; see the module docs.
pub(super) struct Direct {
    stream: Stream,
    /// Bytes read and not yet parsed.
    buffer: Vec<u8>,
    db: i64,
}

enum Stream {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Direct {
    /// Whether `info` can be reached this way (TLS cannot).
    pub(super) fn reaches(info: &ConnectionInfo) -> bool {
        let unix = cfg!(unix) && matches!(info.addr(), ConnectionAddr::Unix(_));
        unix || matches!(info.addr(), ConnectionAddr::Tcp(..))
    }

    /// Connects to `info` (see [`Direct::reaches`]), authenticates and
    /// selects the database, all within `timeout`.
    pub(super) async fn connect(info: &ConnectionInfo, timeout: Duration) -> RedisResult<Direct> {
        let connected = async {
            let stream = match info.addr() {
                ConnectionAddr::Tcp(host, port) => {
                    let stream = TcpStream::connect((host.as_str(), *port)).await?;
                    configure(&stream)?;
                    Stream::Tcp(stream)
                }
                #[cfg(unix)]
                ConnectionAddr::Unix(path) => Stream::Unix(UnixStream::connect(path).await?),
                other => {
                    return Err(RedisError::from((
                        ErrorKind::InvalidClientConfig,
                        "a direct connection is over plain TCP or a Unix socket",
                        format!("{other:?}"),
                    )));
                }
            };
            let settings = info.redis_settings();
            let mut direct = Direct {
                stream,
                buffer: Vec::with_capacity(READ_CHUNK),
                db: settings.db(),
            };
            let mut setup = redis::pipe();
            if let Some(password) = settings.password() {
                setup.cmd("AUTH");
                if let Some(username) = settings.username() {
                    setup.arg(username);
                }
                setup.arg(password);
            }
            if settings.db() != 0 {
                setup.cmd("SELECT").arg(settings.db());
            }
            if !setup.is_empty() {
                let packed = setup.get_packed_pipeline();
                for reply in direct.exchange(&packed, setup.len()).await? {
                    reply.extract_error()?;
                }
            }
            Ok(direct)
        };
        match tokio::time::timeout(timeout, connected).await {
            Ok(connected) => connected,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connecting to Redis timed out").into()),
        }
    }

    /// Writes `packed` and reads `replies` replies.
    async fn exchange(&mut self, packed: &[u8], replies: usize) -> RedisResult<Vec<Value>> {
        match &mut self.stream {
            Stream::Tcp(stream) => stream.write_all(packed).await?,
            #[cfg(unix)]
            Stream::Unix(stream) => stream.write_all(packed).await?,
        }
        let mut values = Vec::with_capacity(replies);
        let mut parsed = 0;
        while values.len() < replies {
            match resp::parse(&self.buffer[parsed..])? {
                resp::Parsed::Value(value, length) => {
                    parsed += length;
                    values.push(value);
                }
                resp::Parsed::Needs(at_least) => {
                    let wanted = parsed + at_least;
                    while self.buffer.len() < wanted {
                        self.read(wanted - self.buffer.len()).await?;
                    }
                }
            }
        }
        // One exchange at a time: nothing may follow its replies.
        if parsed != self.buffer.len() {
            return Err(RedisError::from((
                ErrorKind::Parse,
                "bytes followed the replies on a connection with nothing else in flight",
            )));
        }
        self.buffer.clear();
        Ok(values)
    }

    /// Reads at least one byte, making room for `wanted` more.
    async fn read(&mut self, wanted: usize) -> RedisResult<()> {
        self.buffer.reserve(wanted.max(READ_CHUNK));
        let read = match &mut self.stream {
            Stream::Tcp(stream) => stream.read_buf(&mut self.buffer).await?,
            #[cfg(unix)]
            Stream::Unix(stream) => stream.read_buf(&mut self.buffer).await?,
        };
        if read == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "Redis closed the connection").into());
        }
        Ok(())
    }
}

/// `TCP_NODELAY` and keepalive, as on every connection (see `tcp_settings`
/// in the parent module).
fn configure(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    socket2::SockRef::from(stream).set_tcp_keepalive(&super::keepalive())
}

impl ConnectionLike for Direct {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut replies = self.exchange(&cmd.get_packed_command(), 1).await?;
            Ok(replies.pop().unwrap_or(Value::Nil))
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            if pipeline.is_transaction() {
                return Err(RedisError::from((
                    ErrorKind::Client,
                    "a pop's connection does not run transactions",
                )));
            }
            let replies = self.exchange(&pipeline.get_packed_pipeline(), offset + count).await?;
            Ok(replies.into_iter().skip(offset).collect())
        })
    }

    fn get_db(&self) -> i64 {
        self.db
    }
}
