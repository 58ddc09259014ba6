//! Where a [`Redis`](super::Redis) backend connects: one server, a Redis
//! Cluster, or the master that a set of sentinels names, and the URLs that
//! say so.
//!
//! The `redis` crate reads one-server URLs; the cluster and sentinel forms
//! list several hosts (`host:port,host:port`), which no URL parser takes,
//! so they are split here and each host is read as a one-server URL with
//! the same scheme and credentials.

use std::fmt;

use redis::{ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};

use crate::{Error, Result};

/// Where to connect; [`Deployment::parse`] reads it from a URL.
#[derive(Clone)]
#[non_exhaustive]
pub enum Deployment {
    /// One server (or a proxy in front of several).
    Single(ConnectionInfo),
    /// A Redis Cluster, found through any of its nodes; the credentials,
    /// TLS and database settings of the first seed apply to every node.
    Cluster {
        /// Nodes to learn the cluster from.
        seeds: Vec<ConnectionInfo>,
    },
    /// The master that the sentinels know by `master_name`, followed
    /// through failovers.
    Sentinel {
        /// The sentinels, asked in turn.
        sentinels: Vec<ConnectionInfo>,
        /// The name the sentinels monitor the master by.
        master_name: String,
        /// Credentials and database for the master itself.
        master: RedisConnectionInfo,
        /// Whether the master is reached over TLS.
        tls: bool,
    },
}

impl fmt::Debug for Deployment {
    // Addresses only: credentials stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addresses = |infos: &[ConnectionInfo]| infos.iter().map(|i| i.addr().to_string()).collect::<Vec<_>>();
        match self {
            Deployment::Single(info) => write!(f, "Single({}/{})", info.addr(), info.redis_settings().db()),
            Deployment::Cluster { seeds } => write!(f, "Cluster({:?})", addresses(seeds)),
            Deployment::Sentinel {
                sentinels, master_name, ..
            } => write!(f, "Sentinel({master_name} via {:?})", addresses(sentinels)),
        }
    }
}

impl Deployment {
    /// Reads a URL:
    ///
    /// - `redis://…`, `rediss://…`, `unix://…`, `redis+unix://…`: one
    ///   server, as [`Redis::connect_with`](super::Redis::connect_with)
    ///   describes;
    /// - `redis+cluster://[user:password@]host:port[,host:port…]`, or
    ///   `rediss+cluster://…` over TLS: a cluster, from seed nodes;
    /// - `redis+sentinel://[user:password@]host:port[,host:port…]/MASTER[/DB]`,
    ///   or `rediss+sentinel://…` to reach the master over TLS: the master
    ///   the sentinels at those addresses know as `MASTER`. The credentials
    ///   and database are the master's; the sentinels are asked without.
    pub fn parse(url: &str) -> Result<Deployment> {
        let invalid = |why: &str| Error::Config(format!("invalid Redis URL: {why}"));
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(invalid("no scheme (redis://, redis+cluster://, redis+sentinel:// …)"));
        };
        let (kind, node_scheme) = match scheme {
            "redis+cluster" => ("cluster", "redis"),
            "rediss+cluster" => ("cluster", "rediss"),
            "redis+sentinel" => ("sentinel", "redis"),
            "rediss+sentinel" => ("sentinel", "rediss"),
            _ => {
                let info = url.into_connection_info().map_err(|e| invalid(&e.to_string()))?;
                return Ok(Deployment::Single(info));
            }
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, hosts) = match authority.rsplit_once('@') {
            Some((credentials, hosts)) => (Some(credentials), hosts),
            None => (None, authority),
        };
        let hosts: Vec<&str> = hosts.split(',').filter(|host| !host.is_empty()).collect();
        if hosts.is_empty() {
            return Err(invalid(&format!("{scheme}:// needs at least one host:port")));
        }
        let node = |scheme: &str, credentials: Option<&str>, host: &str, path: &str| {
            let userinfo = credentials.map(|c| format!("{c}@")).unwrap_or_default();
            format!("{scheme}://{userinfo}{host}/{path}")
                .into_connection_info()
                .map_err(|e| invalid(&format!("{host}: {e}")))
        };
        if kind == "cluster" {
            let path = path.trim_end_matches('/');
            if !path.is_empty() && path != "0" {
                return Err(invalid("a cluster has only database 0"));
            }
            let seeds = hosts
                .iter()
                .map(|host| node(node_scheme, credentials, host, ""))
                .collect::<Result<Vec<_>>>()?;
            return Ok(Deployment::Cluster { seeds });
        }
        let mut parts = path.split('/').filter(|part| !part.is_empty());
        let Some(master_name) = parts.next() else {
            return Err(invalid(&format!("{scheme}://HOSTS/MASTER needs the master's name")));
        };
        let db = match parts.next() {
            None => 0,
            Some(db) => db
                .parse()
                .map_err(|_| invalid(&format!("`{db}` is not a database number")))?,
        };
        if let Some(extra) = parts.next() {
            return Err(invalid(&format!("unexpected `/{extra}` after the database")));
        }
        let sentinels = hosts
            .iter()
            .map(|host| node("redis", None, host, ""))
            .collect::<Result<Vec<_>>>()?;
        // The master's credentials, read the way one-server URLs are.
        let master = node("redis", credentials, hosts[0], &db.to_string())?
            .redis_settings()
            .clone();
        Ok(Deployment::Sentinel {
            sentinels,
            master_name: master_name.to_owned(),
            master,
            tls: node_scheme == "rediss",
        })
    }
}

#[cfg(test)]
mod tests {
    use redis::ConnectionAddr;

    use super::*;

    fn addresses(infos: &[ConnectionInfo]) -> Vec<String> {
        infos.iter().map(|info| info.addr().to_string()).collect()
    }

    #[test]
    fn one_server_urls_are_the_redis_crates() {
        let Deployment::Single(info) = Deployment::parse("redis://:pw@127.0.0.1:7000/3").unwrap() else {
            panic!("one server")
        };
        assert_eq!(info.addr().to_string(), "127.0.0.1:7000");
        assert_eq!(
            (info.redis_settings().db(), info.redis_settings().password()),
            (3, Some("pw"))
        );
    }

    #[test]
    fn a_cluster_url_lists_seeds_that_share_credentials() {
        let url = "redis+cluster://app:s3cret@127.0.0.1:7000,127.0.0.1:7001";
        let Deployment::Cluster { seeds } = Deployment::parse(url).unwrap() else {
            panic!("a cluster")
        };
        assert_eq!(addresses(&seeds), ["127.0.0.1:7000", "127.0.0.1:7001"]);
        assert!(seeds.iter().all(|seed| seed.redis_settings().username() == Some("app")
            && seed.redis_settings().password() == Some("s3cret")));
        let Deployment::Cluster { seeds } = Deployment::parse("rediss+cluster://h:7000/").unwrap() else {
            panic!("a cluster")
        };
        assert!(matches!(seeds[0].addr(), ConnectionAddr::TcpTls { .. }));
        assert!(Deployment::parse("redis+cluster://h:7000/2").is_err());
        assert!(Deployment::parse("redis+cluster://").is_err());
    }

    #[test]
    fn a_sentinel_url_names_the_master_and_its_database() {
        let url = "redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1:26380/mymaster/2";
        let Deployment::Sentinel {
            sentinels,
            master_name,
            master,
            tls,
        } = Deployment::parse(url).unwrap()
        else {
            panic!("sentinels")
        };
        assert_eq!(addresses(&sentinels), ["127.0.0.1:26379", "127.0.0.1:26380"]);
        assert_eq!(
            sentinels[0].redis_settings().password(),
            None,
            "the sentinels are asked without"
        );
        assert_eq!(
            (master_name.as_str(), master.db(), master.password(), tls),
            ("mymaster", 2, Some("pw"), false)
        );
        assert!(
            Deployment::parse("redis+sentinel://127.0.0.1:26379").is_err(),
            "no master name"
        );
        assert!(
            Deployment::parse("redis+sentinel://127.0.0.1:26379/m/x").is_err(),
            "a bad db"
        );
        let debug = format!("{:?}", Deployment::parse(url).unwrap());
        assert!(!debug.contains("pw") && debug.contains("mymaster"), "{debug}");
    }
}
