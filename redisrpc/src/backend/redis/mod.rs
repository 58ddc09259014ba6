//! [`Backend`] on a real Redis (or Valkey) server, through the `redis` crate.
//!
//! # Connection design
//!
//! A [`Redis`] holds two kinds of connections:
//!
//! - **One shared connection** (a `redis::aio::ConnectionManager`) for every
//!   non-blocking command. It multiplexes: concurrent callers pipeline their
//!   commands over the one socket, so a thousand concurrent `RPUSH`es cost
//!   one connection. It reconnects by itself after a failure, and it has a
//!   response timeout ([`RedisOptions::command_timeout`]) so a dead server
//!   surfaces as [`Error::Connection`] instead of a hang. `RPUSH`es made
//!   while one is on its way go out together as one pipeline
//!   (`pushes.rs`), and a server's replies as one script run
//!   (`replies.rs`).
//!
//! - **Dedicated connections for blocking pops** (`BLPOP` for
//!   [`Backend::blpop`], `BLMPOP`, Redis ≥ 7, for [`Backend::blpop_many`]),
//!   one per pop in flight, kept in a
//!   small idle pool between pops (see `blocking.rs`). Over plain TCP or a
//!   Unix socket the task that pops drives its connection itself
//!   (`direct.rs`), so a reply wakes its caller with no task in between;
//!   over TLS they are the crate's own connections. Redis answers the
//!   commands of one connection in order, so a `BLPOP` waiting on the shared
//!   connection would hold up every command queued behind it, for every
//!   caller, for as long as the list stays empty.
//!
//!   These connections have **no response timeout**. The crate's default is
//!   500 ms, and a `BLPOP` the client stops waiting for is still waiting
//!   inside Redis: when an element is pushed later, Redis hands it to that
//!   orphaned pop and the reply is thrown away — the message is silently
//!   lost. The pop's own timeout is enforced by Redis itself instead, and a
//!   dead peer is detected by TCP keepalive.
//!
//!   Callers waiting for their replies at once ([`Backend::wait_reply`])
//!   share one such connection instead of one each: one `BLPOP` over all
//!   their reply queues, then one pipeline taking the replies that came
//!   (`gathered.rs`), a connection per hash slot on a cluster. A lone
//!   caller pops on a connection of its own.
//!
//! - **One pub/sub connection per subscription** of the shared state
//!   ([`Backend::subscribe`]), owned by a task that reconnects and
//!   resubscribes with backoff when it drops, when it stops answering a
//!   periodic `PING` ([`RedisOptions::subscription_ping_interval`]), or when
//!   its subscriber falls too far behind (see `subscription.rs`; the
//!   documents' Lua scripts are in `documents.rs`).
//!
//! # One server, a cluster, or Sentinel
//!
//! The same connections exist whatever the deployment ([`Deployment`]); what
//! changes is where they go (`topology.rs`). On a cluster the shared
//! connection is the `redis` crate's cluster client, and each dedicated or
//! pub/sub connection goes to a node: the one that owns the popped key, or
//! any, for pub/sub. Through Sentinel, every connection goes to the current
//! master, and the shared one is replaced when the sentinels name a new one
//! (`sentinel.rs`; `shared.rs` makes the three kinds of shared connection
//! one).
//!
//! # Cancel safety
//!
//! Each `BLPOP` is a boxed future that owns its dedicated connection, and
//! [`Backend::blpop`] drives it in the caller's task, so that a pop's reply
//! wakes its caller with no task between them. When the `blpop` future is
//! dropped, a guard moves the pop into a cleanup task, which sends
//! `CLIENT UNBLOCK <id>` for the connection over the shared connection,
//! waits for the `BLPOP` to come back and, if it had already popped an
//! element, pushes it back at the head of its list (`LPUSH`) where it was.
//! Only then does the connection go back to the pool. Dropping the pop
//! instead would close the connection, and an element that Redis had already
//! sent on it would be lost.

mod admin;
mod blocking;
mod clock;
mod deployment;
mod direct;
mod documents;
mod gathered;
mod held;
mod pushes;
mod redirect;
mod reem;
mod replies;
mod resp;
mod sentinel;
mod shared;
mod slot;
mod subscription;
mod topology;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;
use redis::{Client, ConnectionAddr, ConnectionInfo, ErrorKind, FromRedisValue, IntoConnectionInfo, RedisError};

pub use self::admin::RedisConnection;
use self::blocking::Blocking;
pub use self::deployment::Deployment;
use self::documents::LayoutCheck;
use self::shared::Shared;
use self::topology::{Cluster, Kind, Node, NodeFactory, Topology};
use super::{
    Backend, Commit, CommitOutcome, HashFields, HeldKeys, HeldReply, IntoBackend, ReemCommit, ReemDoc, SharedBackend,
    StoredDoc, Subscription, Taken, Ttl,
};
use crate::{Error, Result};

/// Settings for [`Redis::connect_with`].
///
/// Start from [`RedisOptions::default()`] and change what you need, either
/// through the fields or the `with_*` setters:
///
/// ```
/// # use std::time::Duration;
/// # use redisrpc::backend::RedisOptions;
/// let options = RedisOptions::default()
///     .with_connect_timeout(Duration::from_secs(2))
///     .with_command_timeout(None);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisOptions {
    /// How long establishing one connection (TCP or unix socket, TLS,
    /// `AUTH`, `SELECT`) may take.
    pub connect_timeout: Duration,
    /// How long a non-blocking command may wait for its reply before it fails
    /// with [`Error::Connection`]; `None` waits forever. Never applies to
    /// `BLPOP`, whose wait is bounded by its own timeout.
    pub command_timeout: Option<Duration>,
    /// How many dedicated `BLPOP` connections to keep open while idle.
    /// More pops than this can run at once; the extra connections are closed
    /// when their pops finish.
    pub max_idle_blocking_connections: usize,
    /// How often the connection of each subscription of the shared state is
    /// checked with a `PING`, which must be answered within
    /// `command_timeout` (`connect_timeout` when that is `None`). A
    /// connection whose peer vanished without closing it is noticed after at
    /// most this interval and that timeout, instead of the minutes that TCP
    /// keepalive takes. Intervals under 10 ms count as 10 ms.
    pub subscription_ping_interval: Duration,
    /// For `rediss://` URLs: the certificate authority, in PEM, that signed
    /// the server's certificate, trusted instead of the public web roots.
    /// Robots and private networks usually run their own CA.
    pub tls_root_certificate: Option<Vec<u8>>,
    /// For `rediss://` URLs to servers that authenticate clients by
    /// certificate (`tls-auth-clients yes`): this client's certificate and
    /// private key, in PEM.
    pub tls_client_identity: Option<TlsIdentity>,
}

/// A client certificate and its private key, both in PEM.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The certificate chain, in PEM.
    pub certificate: Vec<u8>,
    /// The private key, in PEM.
    pub key: Vec<u8>,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Default for RedisOptions {
    /// `connect_timeout` 5 s, `command_timeout` 10 s,
    /// `max_idle_blocking_connections` 64, `subscription_ping_interval` 5 s.
    fn default() -> Self {
        RedisOptions {
            connect_timeout: Duration::from_secs(5),
            command_timeout: Some(Duration::from_secs(10)),
            max_idle_blocking_connections: 64,
            subscription_ping_interval: Duration::from_secs(5),
            tls_root_certificate: None,
            tls_client_identity: None,
        }
    }
}

impl RedisOptions {
    /// Sets [`RedisOptions::connect_timeout`].
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`RedisOptions::command_timeout`].
    pub fn with_command_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Sets [`RedisOptions::max_idle_blocking_connections`].
    pub fn with_max_idle_blocking_connections(mut self, max: usize) -> Self {
        self.max_idle_blocking_connections = max;
        self
    }

    /// Sets [`RedisOptions::subscription_ping_interval`].
    pub fn with_subscription_ping_interval(mut self, interval: Duration) -> Self {
        self.subscription_ping_interval = interval;
        self
    }

    /// Sets [`RedisOptions::tls_root_certificate`] (PEM).
    pub fn with_tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root_certificate = Some(pem.into());
        self
    }

    /// Sets [`RedisOptions::tls_client_identity`] (PEM certificate and key).
    pub fn with_tls_client_identity(mut self, certificate: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        self.tls_client_identity = Some(TlsIdentity {
            certificate: certificate.into(),
            key: key.into(),
        });
        self
    }
}

/// A Redis server as a [`Backend`]; cheap to clone (clones share the
/// connections).
///
/// See the [module docs](self) for how it uses its connections.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    /// The shared, auto-reconnecting connection for non-blocking commands.
    /// Cloning it is cheap and every clone uses the same socket (one per
    /// node of a cluster).
    manager: Shared,
    /// Pushes in batches over the shared connection.
    pushes: Arc<pushes::Pushes>,
    /// The dedicated `BLPOP` connections.
    blocking: Arc<Blocking>,
    /// Callers' replies awaited together.
    gathered: gathered::BySlot,
    /// Which server each dedicated, control and pub/sub connection goes to.
    topology: Arc<Topology>,
    /// The shared state's Lua script, once loaded.
    layout: LayoutCheck,
    /// The servers' clocks, for deadlines: one per server (per slot on a
    /// cluster, per master through Sentinel).
    clocks: Mutex<HashMap<u64, Arc<clock::Clock>>>,
    /// Where we are connected, without credentials, for `Debug`.
    server: String,
    /// Where we connected, to connect again ([`Backend::connect_anew`]).
    deployment: Deployment,
    options: RedisOptions,
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("server", &self.inner.server)
            .field("options", &self.inner.options)
            .field("idle_blocking_connections", &self.inner.blocking.idle_count())
            .finish()
    }
}

impl Redis {
    /// Connects with [`RedisOptions::default()`]; see [`Redis::connect_with`].
    pub async fn connect(url: &str) -> Result<Redis> {
        Redis::connect_with(url, RedisOptions::default()).await
    }

    /// Connects to the server at `url` and checks that it answers.
    ///
    /// Accepted URLs:
    ///
    /// - `redis://[[user]:password@]host[:port][/db]`, for example
    ///   `redis://127.0.0.1:6379`, `redis://:s3cret@host/3` (password, db 3),
    ///   `redis://app:s3cret@host` (ACL user);
    /// - `rediss://…`, the same over TLS (the server's certificate checked
    ///   against the public web roots, or against
    ///   [`RedisOptions::tls_root_certificate`] when set);
    /// - `unix:///path/redis.sock` or `redis+unix:///path/redis.sock`, with
    ///   optional `?db=3&user=app&pass=s3cret`;
    /// - `redis+cluster://[user:password@]host:port[,host:port…]` (or
    ///   `rediss+cluster://`): a Redis Cluster, from seed nodes;
    /// - `redis+sentinel://[user:password@]host:port[,host:port…]/MASTER[/DB]`
    ///   (or `rediss+sentinel://`): the master the sentinels know as
    ///   `MASTER`, followed through failovers (see [`Deployment::parse`]).
    ///
    /// Connection errors are reported here rather than at the first call:
    /// an unparsable URL gives [`Error::Config`]; an unreachable server, a
    /// refused password or a failed TLS handshake give [`Error::Connection`].
    /// Needs a Tokio runtime.
    pub async fn connect_with(url: &str, options: RedisOptions) -> Result<Redis> {
        Redis::connect_to(Deployment::parse(url)?, options).await
    }

    /// Connects with a `redis` crate client's address, credentials and
    /// TLS settings, for setups the URLs do not cover.
    pub async fn from_client(client: &Client, options: RedisOptions) -> Result<Redis> {
        Redis::connect_to(Deployment::Single(client.get_connection_info().clone()), options).await
    }

    /// Connects to `deployment`: one server, a cluster, or the master the
    /// sentinels name (see [`Deployment`]); errors as
    /// [`connect_with`](Redis::connect_with).
    pub async fn connect_to(deployment: Deployment, options: RedisOptions) -> Result<Redis> {
        let server = format!("{deployment:?}");
        let kept = deployment.clone();
        let tls = |info: &ConnectionInfo| matches!(info.addr(), ConnectionAddr::TcpTls { .. });
        // On one server, the first dedicated connection is made before the
        // shared one, and without retries, so a wrong address or password
        // fails within `connect_timeout` instead of after the manager's
        // reconnect backoff.
        let mut first = None;
        let (topology, manager) = match deployment {
            Deployment::Single(info) => {
                if tls(&info) {
                    ensure_crypto_provider();
                }
                let id = info.addr().to_string();
                let factory = NodeFactory::new(info.clone(), options.clone());
                let info = info.set_tcp_settings(tcp_settings());
                let client = client_for(info, &options).map_err(connect_error)?;
                let node = Node { id, client };
                first = Some(
                    blocking::connect(&node, options.connect_timeout)
                        .await
                        .map_err(connect_error)?,
                );
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(options.connect_timeout))
                    .set_response_timeout(options.command_timeout);
                let manager = ConnectionManager::new_with_config(node.client.clone(), config)
                    .await
                    .map_err(connect_error)?;
                (Topology::new(Kind::Single(node), factory), Shared::Single(manager))
            }
            Deployment::Cluster { seeds } => {
                let Some(first) = seeds.first().cloned() else {
                    return Err(Error::Config("a cluster needs at least one seed node".into()));
                };
                if tls(&first) {
                    ensure_crypto_provider();
                }
                let factory = NodeFactory::new(first, options.clone());
                let nodes = seeds
                    .iter()
                    .map(|seed| factory.node_at(&seed.addr().to_string()))
                    .collect::<Result<Vec<_>>>()?;
                let mut builder = redis::cluster::ClusterClientBuilder::new(seeds)
                    .connection_timeout(options.connect_timeout)
                    .tcp_settings(tcp_settings());
                // Equal, so that a command that timed out is not sent again
                // (the crate resends one whose reply is late, while the
                // overall time is not up): it may have run.
                if let Some(timeout) = options.command_timeout {
                    builder = builder
                        .response_timeout(timeout)
                        .overall_response_timeout(Some(timeout));
                }
                if let Some(certificates) = certificates(&options) {
                    builder = builder.certs(certificates);
                }
                let client = builder.build().map_err(connect_error)?;
                // Over connections that send `ASKING` with the command it
                // is for (see `redirect.rs`); the crate offers that choice
                // with this one call.
                let cluster = client
                    .get_async_generic_connection::<redirect::NodeConnection>()
                    .await
                    .map_err(connect_error)?;
                (
                    Topology::new(Kind::Cluster(Cluster::new(nodes)), factory),
                    Shared::Cluster(cluster),
                )
            }
            Deployment::Sentinel {
                sentinels,
                master_name,
                master,
                tls,
            } => {
                if tls {
                    ensure_crypto_provider();
                }
                let addr = if tls {
                    ConnectionAddr::TcpTls {
                        host: String::new(),
                        port: 0,
                        insecure: false,
                        tls_params: None,
                    }
                } else {
                    ConnectionAddr::Tcp(String::new(), 0)
                };
                let template = addr
                    .into_connection_info()
                    .map_err(connect_error)?
                    .set_redis_settings(master);
                let factory = NodeFactory::new(template, options.clone());
                let follower = sentinel::Follower::connect(sentinels, master_name, factory.clone()).await?;
                (
                    Topology::new(Kind::Sentinel(Arc::clone(&follower)), factory),
                    Shared::Sentinel(follower),
                )
            }
        };
        let topology = Arc::new(topology);
        // Connecting does not check that commands are allowed: without a
        // needed password Redis only refuses the first command, with NOAUTH.
        redis::cmd("PING")
            .query_async::<()>(&mut manager.clone())
            .await
            .map_err(connect_error)?;

        let blocking = Arc::new(Blocking::new(
            Arc::clone(&topology),
            manager.clone(),
            options.max_idle_blocking_connections,
        ));
        if let Some(first) = first {
            blocking.put(first);
        }
        let redis = Redis {
            inner: Arc::new(Inner {
                pushes: pushes::Pushes::new(manager.clone()),
                gathered: gathered::BySlot::new(Arc::clone(&blocking), Arc::clone(&topology)),
                manager,
                blocking,
                topology,
                layout: LayoutCheck::default(),
                clocks: Mutex::default(),
                server,
                deployment: kept,
                options,
            }),
        };
        if redis.inner.topology.is_cluster() {
            // Every master, so that subscriptions can move to any of them,
            // even from a URL with one seed.
            for master in redis.masters().await? {
                redis.inner.topology.node_by_id(&master)?;
            }
        }
        Ok(redis)
    }

    /// The clock of the server that holds `key`, and the slot to ask: one
    /// clock on one server, one per slot on a cluster (the only case that
    /// hashes the key), one per master through Sentinel.
    fn clock(&self, key: &str) -> (Arc<clock::Clock>, u16) {
        let (name, slot) = match &self.inner.topology.kind {
            Kind::Single(_) => (0, 0),
            Kind::Cluster(_) => {
                let slot = slot::of(key);
                (u64::from(slot), slot)
            }
            Kind::Sentinel(follower) => (follower.master().generation, 0),
        };
        let mut clocks = self.inner.clocks.lock().unwrap_or_else(PoisonError::into_inner);
        (Arc::clone(clocks.entry(name).or_default()), slot)
    }

    /// Runs one non-blocking command over the shared connection.
    async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T> {
        // A clone of the manager shares its socket; `query_async` only needs
        // it mutably for the duration of the call.
        let mut conn = self.inner.manager.clone();
        cmd.query_async(&mut conn).await.map_err(map_error)
    }
}

#[async_trait]
impl Backend for Redis {
    async fn rpush(&self, key: &str, values: &[&[u8]]) -> Result<usize> {
        if values.is_empty() {
            // RPUSH needs at least one value; pushing nothing leaves the
            // length as it is.
            return self.llen(key).await;
        }
        self.inner.pushes.rpush(key, values).await
    }

    async fn rpush_expire(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        // A script rather than `MULTI`: a transaction runs `PEXPIRE` even
        // when `RPUSH` is refused (`WRONGTYPE`), which would set another
        // program's key, or a document, to expire.
        static RPUSH_EXPIRE: LazyLock<redis::Script> = LazyLock::new(|| {
            redis::Script::new(
                "redis.call('RPUSH', KEYS[1], ARGV[1])\nredis.call('PEXPIRE', KEYS[1], ARGV[2])\nreturn 1",
            )
        });
        let mut conn = self.inner.manager.clone();
        RPUSH_EXPIRE
            .key(key)
            .arg(value)
            .arg(expire_millis(ttl))
            .invoke_async::<()>(&mut conn)
            .await
            .map_err(map_error)
    }

    async fn rpush_expire_each(&self, pushes: &[(&str, &[u8])], ttl: Duration) -> Vec<Result<()>> {
        replies::push_each(&self.inner.manager, self.inner.topology.is_cluster(), pushes, ttl).await
    }

    async fn lpush(&self, key: &str, value: &[u8]) -> Result<usize> {
        self.query(redis::cmd("LPUSH").arg(key).arg(value)).await
    }

    async fn lpop(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.query(redis::cmd("LPOP").arg(key)).await
    }

    async fn blpop(&self, key: &str, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        match timeout {
            // BLPOP with 0 would wait forever; a zero timeout means "don't wait".
            Some(timeout) if timeout.is_zero() => self.lpop(key).await,
            _ => Ok(self.inner.blocking.pop(key, 1, timeout).await?.pop()),
        }
    }

    async fn wait_reply(&self, queue: &str, timeout: Option<Duration>) -> Result<Option<Vec<u8>>> {
        if timeout.is_some_and(|timeout| timeout.is_zero()) {
            // Nothing to wait for.
            return self.lpop(queue).await;
        }
        self.inner.gathered.pop(queue, timeout).await
    }

    async fn blpop_many(&self, key: &str, max: usize, timeout: Option<Duration>) -> Result<Vec<Vec<u8>>> {
        let max = max.max(1);
        match timeout {
            Some(timeout) if timeout.is_zero() => {
                let popped: Option<Vec<Vec<u8>>> = self.query(redis::cmd("LPOP").arg(key).arg(max)).await?;
                Ok(popped.unwrap_or_default())
            }
            _ => self.inner.blocking.pop(key, max, timeout).await,
        }
    }

    async fn settle(&self) {
        self.inner.blocking.settle().await;
    }

    async fn lrem(&self, key: &str, count: isize, value: &[u8]) -> Result<usize> {
        self.query(redis::cmd("LREM").arg(key).arg(count).arg(value)).await
    }

    async fn llen(&self, key: &str) -> Result<usize> {
        self.query(redis::cmd("LLEN").arg(key)).await
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let set: i64 = self
            .query(redis::cmd("PEXPIRE").arg(key).arg(expire_millis(ttl)))
            .await?;
        Ok(set == 1)
    }

    async fn ttl(&self, key: &str) -> Result<Ttl> {
        let millis: i64 = self.query(redis::cmd("PTTL").arg(key)).await?;
        Ok(match millis {
            -1 => Ttl::Persistent,
            m if m < 0 => Ttl::Missing,
            m => Ttl::Expires(Duration::from_millis(m.unsigned_abs())),
        })
    }

    async fn doc_get(&self, key: &str) -> Result<Option<StoredDoc>> {
        documents::doc_get(&self.inner.manager, &self.inner.layout, key).await
    }

    async fn doc_commit(&self, commit: &Commit) -> Result<CommitOutcome> {
        documents::doc_commit(&self.inner.manager, &self.inner.layout, commit).await
    }

    async fn reem_get(&self, key: &str) -> Result<Option<ReemDoc>> {
        self.reem_read(key).await
    }

    async fn reem_commit(&self, commit: &ReemCommit) -> Result<CommitOutcome<ReemDoc>> {
        self.reem_write(commit).await
    }

    async fn hash_get_all(&self, key: &str) -> Result<HashFields> {
        documents::hash_get_all(&self.inner.manager, key).await
    }

    async fn publish(&self, channel: &str, message: &[u8]) -> Result<()> {
        self.query::<i64>(redis::cmd("PUBLISH").arg(channel).arg(message))
            .await
            .map(drop)
    }

    async fn now(&self, key: &str) -> Result<Duration> {
        let (clock, slot) = self.clock(key);
        clock.now(&self.inner.manager, slot).await
    }

    fn now_known(&self, key: &str) -> Option<Duration> {
        let (clock, slot) = self.clock(key);
        clock.known(&self.inner.manager, slot)
    }

    async fn take_held(&self, keys: &HeldKeys, max: usize, timeout: Option<Duration>) -> Result<Vec<Taken>> {
        held::take(&self.inner.blocking, &self.inner.manager, keys, max, timeout).await
    }

    async fn release_held(&self, keys: &HeldKeys, taken: &Taken, reply: Option<HeldReply<'_>>) -> Result<()> {
        held::release(
            &self.inner.manager,
            self.inner.topology.is_cluster(),
            keys,
            taken,
            reply,
        )
        .await
    }

    async fn release_held_each(&self, keys: &HeldKeys, released: &[(&Taken, HeldReply<'_>)]) -> Vec<Result<()>> {
        replies::release_each(&self.inner.manager, self.inner.topology.is_cluster(), keys, released).await
    }

    async fn requeue_held(&self, keys: &HeldKeys, only_if_dead: bool) -> Result<Option<usize>> {
        held::requeue(&self.inner.manager, keys, only_if_dead).await
    }

    async fn hash_replace(&self, key: &str, fields: &[(&str, &[u8])], ttl: Duration) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic().del(key).ignore();
        if !fields.is_empty() {
            pipe.hset_multiple(key, fields).ignore();
        }
        pipe.cmd("PEXPIRE").arg(key).arg(expire_millis(ttl)).ignore();
        let mut conn = self.inner.manager.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(map_error)
    }

    async fn hash_set(&self, key: &str, field: &str, value: &[u8]) -> Result<()> {
        self.query::<i64>(redis::cmd("HSET").arg(key).arg(field).arg(value))
            .await
            .map(drop)
    }

    async fn hash_del(&self, key: &str, field: &str) -> Result<bool> {
        Ok(self.query::<i64>(redis::cmd("HDEL").arg(key).arg(field)).await? > 0)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.query::<i64>(redis::cmd("EXISTS").arg(key)).await? > 0)
    }

    async fn subscribe(&self, channels: &[String], patterns: &[String]) -> Result<Subscription> {
        let options = &self.inner.options;
        let timing = subscription::Timing {
            connect_timeout: options.connect_timeout,
            // A zero interval would ping without pause.
            ping_interval: options.subscription_ping_interval.max(Duration::from_millis(10)),
            ping_timeout: options.command_timeout.unwrap_or(options.connect_timeout),
        };
        subscription::subscribe(Arc::clone(&self.inner.topology), timing, channels, patterns).await
    }

    async fn connect_anew(&self) -> Result<Option<SharedBackend>> {
        let again = Redis::connect_to(self.inner.deployment.clone(), self.inner.options.clone()).await?;
        Ok(Some(again.into_backend()))
    }

    async fn del(&self, key: &str) -> Result<bool> {
        let deleted: i64 = self.query(redis::cmd("DEL").arg(key)).await?;
        Ok(deleted > 0)
    }
}

/// Maps a `redis` crate error to ours: a broken or unreachable connection
/// (I/O errors, refused or dropped connections, the crate's own timeouts,
/// an unreadable reply stream, failed authentication) is
/// [`Error::Connection`]; an error reply from the server (`WRONGTYPE`, …) is
/// [`Error::Command`].
pub(super) fn map_error(e: RedisError) -> Error {
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
        return Error::Connection { source: e.into() };
    }
    match e.kind() {
        ErrorKind::Server(_) | ErrorKind::Extension | ErrorKind::UnexpectedReturnType => {
            Error::Command { source: e.into() }
        }
        ErrorKind::InvalidClientConfig => Error::Config(e.to_string()),
        _ => Error::Connection { source: e.into() },
    }
}

/// A client for `info`, with the TLS certificates of `options` when it has
/// any.
fn client_for(info: ConnectionInfo, options: &RedisOptions) -> redis::RedisResult<Client> {
    match certificates(options) {
        Some(certificates) => Client::build_with_tls(info, certificates),
        None => Client::open(info),
    }
}

fn certificates(options: &RedisOptions) -> Option<redis::TlsCertificates> {
    if options.tls_root_certificate.is_none() && options.tls_client_identity.is_none() {
        return None;
    }
    Some(redis::TlsCertificates {
        client_tls: options
            .tls_client_identity
            .clone()
            .map(|identity| redis::ClientTlsConfig {
                client_cert: identity.certificate,
                client_key: identity.key,
            }),
        root_cert: options.tls_root_certificate.clone(),
    })
}

/// Maps an error while connecting: anything but a bad setting means the
/// server cannot be used (including a refused password or `NOAUTH`, which
/// are error replies), so it is [`Error::Connection`].
fn connect_error(e: RedisError) -> Error {
    match e.kind() {
        ErrorKind::InvalidClientConfig => Error::Config(e.to_string()),
        _ => Error::Connection { source: e.into() },
    }
}

/// A duration in whole milliseconds, rounded up so a short non-zero
/// duration never becomes 0.
pub(super) fn millis_ceil(d: Duration) -> u128 {
    d.as_nanos().div_ceil(1_000_000)
}

/// The `PEXPIRE` argument for `ttl`. Capped (at about 146 million years) so
/// Redis never rejects it for overflowing its clock.
pub(super) fn expire_millis(ttl: Duration) -> u64 {
    const MAX: u128 = 1 << 62;
    millis_ceil(ttl).min(MAX) as u64
}

/// Socket settings for every connection: `TCP_NODELAY`, because RPC sends
/// small latency-sensitive commands; keepalive probes, because the `BLPOP`
/// connections have no response timeout and would otherwise wait forever on
/// a peer that vanished without closing the connection.
fn tcp_settings() -> TcpSettings {
    TcpSettings::default().set_nodelay(true).set_keepalive(keepalive())
}

/// The keepalive probes of every connection (see [`tcp_settings`]).
fn keepalive() -> socket2::TcpKeepalive {
    let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(30));
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "macos", windows))]
    let keepalive = keepalive.with_interval(Duration::from_secs(10));
    keepalive
}

/// The `redis` crate builds its TLS config with rustls' process-wide default
/// crypto provider and panics when there is none (it enables no provider
/// itself). Install ring's unless the application already chose one.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // An error means another thread installed a provider first, which
        // serves just as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
