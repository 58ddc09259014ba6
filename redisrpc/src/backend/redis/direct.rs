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
//! Its caller may also write once and read the replies one by one
//! ([`Direct::send`], [`Direct::receive`]): a gathered wait for replies
//! writes its take behind it, and hands over the wait's reply before the
//! take's are read.
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
    /// Bytes read; those before `parsed` are replies already returned.
    buffer: Vec<u8>,
    parsed: usize,
    /// Replies written for and not yet read.
    owed: usize,
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
                parsed: 0,
                owed: 0,
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
        self.send(packed, replies).await?;
        let mut values = Vec::with_capacity(replies);
        while self.owed > 0 {
            values.push(self.receive().await?);
        }
        Ok(values)
    }

    /// Writes `packed`, whose `replies` replies are then read one by one
    /// with [`Direct::receive`]. Nothing may be owed from an earlier send.
    pub(super) async fn send(&mut self, packed: &[u8], replies: usize) -> RedisResult<()> {
        if self.owed > 0 {
            return Err(RedisError::from((
                ErrorKind::Client,
                "a command was sent on a connection still owed replies",
            )));
        }
        match &mut self.stream {
            Stream::Tcp(stream) => stream.write_all(packed).await?,
            #[cfg(unix)]
            Stream::Unix(stream) => stream.write_all(packed).await?,
        }
        self.owed = replies;
        Ok(())
    }

    /// Reads the next reply owed by the last [`Direct::send`].
    pub(super) async fn receive(&mut self) -> RedisResult<Value> {
        if self.owed == 0 {
            return Err(RedisError::from((
                ErrorKind::Client,
                "no reply is owed on this connection",
            )));
        }
        let value = loop {
            match resp::parse(&self.buffer[self.parsed..])? {
                resp::Parsed::Value(value, length) => {
                    self.parsed += length;
                    break value;
                }
                resp::Parsed::Needs(at_least) => {
                    let wanted = self.parsed + at_least;
                    while self.buffer.len() < wanted {
                        self.read(wanted - self.buffer.len()).await?;
                    }
                }
            }
        };
        self.owed -= 1;
        if self.owed == 0 {
            // One send at a time: nothing may follow its replies.
            if self.parsed != self.buffer.len() {
                return Err(RedisError::from((
                    ErrorKind::Parse,
                    "bytes followed the replies on a connection with nothing else in flight",
                )));
            }
            self.buffer.clear();
            self.parsed = 0;
        }
        Ok(value)
    }

    /// Whether replies are still owed: then the connection is not free
    /// for another command.
    pub(super) fn owes(&self) -> bool {
        self.owed > 0
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

#[cfg(test)]
mod tests {
    use redisrpc_testkit::RedisServer;

    use super::*;

    async fn connect(server: &RedisServer) -> Direct {
        let info = redis::IntoConnectionInfo::into_connection_info(server.url()).expect("a valid URL");
        Direct::connect(&info, Duration::from_secs(5)).await.expect("connected")
    }

    /// A write of several commands is read back one reply at a time; until
    /// the last is read the connection refuses another command, and once
    /// it is, the connection carries the next exchange as before.
    #[tokio::test]
    #[redisrpc_testkit::needs(redis)]
    async fn replies_sent_together_are_read_one_by_one() {
        let Some(server) = RedisServer::start() else { return };
        let mut direct = connect(&server).await;
        let mut packed = redis::cmd("RPUSH").arg("list").arg("a").get_packed_command();
        packed.extend(redis::cmd("LPOP").arg("list").get_packed_command());
        packed.extend(redis::cmd("LPOP").arg("list").get_packed_command());
        direct.send(&packed, 3).await.expect("written");
        assert_eq!(direct.receive().await.expect("the push's reply"), Value::Int(1));
        assert!(direct.owes());
        let refused = redis::cmd("PING").query_async::<String>(&mut direct).await;
        assert!(refused.is_err(), "a command while replies are owed: {refused:?}");
        assert_eq!(
            direct.receive().await.expect("the first pop's"),
            Value::BulkString(b"a".to_vec())
        );
        assert_eq!(direct.receive().await.expect("the second pop's"), Value::Nil);
        assert!(!direct.owes());
        assert!(direct.receive().await.is_err(), "nothing more is owed");
        let pong: String = redis::cmd("PING").query_async(&mut direct).await.expect("a PONG");
        assert_eq!(pong, "PONG");
    }
}
