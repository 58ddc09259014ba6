//! `redisrpc acl ROLE [NAME] --user USER`: the `ACL SETUSER` line of a
//! least-privilege user for one part of the system, from
//! [`redisrpc::acl`], quoted for `redis-cli` so it can be piped to it.

use std::io::Read;

use clap::ValueEnum;
use redisrpc::acl::{self, Role};

use crate::failure::{self, Failure, Outcome};

/// The parts a process can play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RoleName {
    /// A server of the queue NAME.
    Server,
    /// A client of the queue NAME.
    Client,
    /// Reads (and mirrors) the document NAME.
    StateReader,
    /// Reads and writes the document NAME.
    StateWriter,
    /// What the `redisrpc` command needs: everything.
    Operator,
}

/// `redisrpc acl`.
pub(crate) fn acl(
    role: RoleName,
    name: Option<&str>,
    user: &str,
    password: Option<&str>,
    mirrors: &[String],
) -> Outcome {
    let needs_name = |what: &str| match name {
        Some(name) => Ok(name.to_owned()),
        None => Err(Failure::new(
            failure::USAGE,
            format!("this role needs the {what}'s name"),
        )),
    };
    let role = match role {
        RoleName::Server => Role::Server(needs_name("queue")?),
        RoleName::Client => Role::Client(needs_name("queue")?),
        RoleName::StateReader => Role::StateReader {
            document: needs_name("document")?,
            mirrors: mirrors.to_vec(),
        },
        RoleName::StateWriter => Role::StateWriter {
            document: needs_name("document")?,
            mirrors: mirrors.to_vec(),
        },
        RoleName::Operator => Role::Operator,
    };
    let rules = acl::rules(&role).map_err(|error| Failure::new(failure::USAGE, error.to_string()))?;
    let password = match password {
        Some(password) => password.to_owned(),
        None => {
            let password = random_password()?;
            eprintln!("redisrpc: a new password for `{user}`: {password}");
            password
        }
    };
    let mut words = vec![
        "ACL".to_owned(),
        "SETUSER".to_owned(),
        user.to_owned(),
        "reset".to_owned(),
        "on".to_owned(),
        format!(">{password}"),
    ];
    words.extend(rules);
    let quoted: Vec<String> = words.iter().map(|word| quote(word)).collect();
    println!("{}", quoted.join(" "));
    Ok(())
}

/// A word as `redis-cli` reads it: bare when it can be, else in single
/// quotes, inside which only `\'` is an escape.
fn quote(word: &str) -> String {
    let bare = !word.is_empty()
        && !word
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '\\'));
    if bare {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "\\'"))
    }
}

/// 32 random bytes, in hex.
fn random_password() -> Outcome<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .map_err(|e| {
            Failure::new(
                failure::USAGE,
                format!("cannot read /dev/urandom for a password (give --password): {e}"),
            )
        })?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_as_redis_cli_reads_them() {
        assert_eq!(quote("+rpush"), "+rpush");
        assert_eq!(quote("~calc:rpc:*"), "~calc:rpc:*");
        assert_eq!(quote("(%W~calc:rpc:* +rpush)"), "'(%W~calc:rpc:* +rpush)'");
        assert_eq!(quote(r"&__state__:robot\[*"), r"'&__state__:robot\[*'");
        assert_eq!(quote("it's"), r"'it\'s'");
    }
}
