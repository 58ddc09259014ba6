//! `call` and `describe`: a service's methods, through the library's own
//! client, so the requests are exactly what any redisrpc client sends.

use std::io::Read;

use redisrpc::describe::{DESCRIBE_METHOD, MethodDescription, ServiceDescription};
use redisrpc::{Call, Client};
use serde_json::{Map, Value, json};

use crate::Options;
use crate::check;
use crate::failure::{self, Failure, Outcome};
use crate::servers;
use crate::shapes;
use crate::words;

/// What `redisrpc call` is asked to do.
pub(crate) struct CallRequest<'a> {
    pub(crate) queue: &'a str,
    pub(crate) method: &'a str,
    pub(crate) args: &'a [String],
    pub(crate) data: Option<&'a str>,
    pub(crate) urgent: bool,
    /// Check the arguments against the method's description first.
    pub(crate) check: bool,
}

/// `redisrpc call QUEUE METHOD [ARG…]`.
pub(crate) async fn call(options: &Options, request: CallRequest<'_>) -> Outcome {
    let CallRequest {
        queue,
        method,
        args,
        data,
        urgent,
        check,
    } = request;
    let (positional, named) = match data {
        Some(data) => arguments_from_data(data)?,
        None => words::arguments(args),
    };
    let backend = options.backend().await?;
    let mut redis = backend.connection();
    let client = Client::new(backend, queue).with_timeout(Some(options.timeout));
    if check && servers::any_alive(&mut redis, queue).await? {
        check_arguments(&client, queue, method, &positional, &named).await?;
    }
    let mut call = Call::new(method).with_urgent(urgent);
    for value in positional {
        call = call.arg(value);
    }
    for (name, value) in named {
        call = call.kwarg(name, value);
    }
    let value: Value = client.send(call).await?;
    print_json(options, &value);
    Ok(())
}

/// Holds the arguments to the description of `method`, when the server of
/// `queue` describes itself. Only a server with a liveness record is asked:
/// the others (peers, or none) would not answer, and the call goes as it is.
async fn check_arguments(
    client: &Client,
    queue: &str,
    method: &str,
    positional: &[Value],
    named: &Map<String, Value>,
) -> Outcome {
    let described = match description(client).await {
        Ok(Some(described)) => described,
        Ok(None) => return Ok(()),
        Err(failure) => {
            return Err(Failure::new(
                failure.code,
                format!(
                    "asking `{queue}` for its description to check the arguments (the call was not sent; \
                     --no-check skips this): {failure}"
                ),
            ));
        }
    };
    let Some(found) = described.method(method) else {
        let known: Vec<&str> = described.methods.iter().map(|m| &*m.name).collect();
        return Err(Failure::new(
            failure::NOT_FOUND,
            format!("`{queue}` has no method `{method}` (it has: {})", known.join(", ")),
        ));
    };
    check::arguments(found, described.types.as_ref(), positional, named).map_err(|misfit| {
        Failure::new(
            failure::USAGE,
            format!("{misfit} (the call was not sent; --no-check sends it anyway)"),
        )
    })
}

/// The service's own description, or `None` from a server that has none.
/// The request goes to the head of the queue: a question about the service
/// should not wait behind its work.
async fn description(client: &Client) -> Outcome<Option<ServiceDescription>> {
    match client.send(Call::new(DESCRIBE_METHOD).with_urgent(true)).await {
        Ok(described) => Ok(Some(described)),
        Err(error) if error.is_remote() || error.is_decode() => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// `redisrpc describe QUEUE [METHOD]`.
pub(crate) async fn describe(options: &Options, queue: &str, method: Option<&str>) -> Outcome {
    let client = client(options, queue).await?;
    let Some(described) = description(&client).await? else {
        return Err(Failure::new(
            failure::NOT_FOUND,
            format!(
                "the server of `{queue}` does not describe itself (it has no `{DESCRIBE_METHOD}`); \
                 servers of other RedisRPC implementations have no descriptions"
            ),
        ));
    };
    let methods: Vec<&MethodDescription> = match method {
        None => described.methods.iter().collect(),
        Some(name) => match described.method(name) {
            Some(found) => vec![found],
            None => {
                let known: Vec<&str> = described.methods.iter().map(|m| &*m.name).collect();
                return Err(Failure::new(
                    failure::NOT_FOUND,
                    format!("`{queue}` has no method `{name}` (it has: {})", known.join(", ")),
                ));
            }
        },
    };
    if options.json {
        let methods: Vec<Value> = methods.iter().map(|m| json!(m)).collect();
        println!(
            "{}",
            json!({"name": described.name, "docs": described.docs, "methods": methods})
        );
        return Ok(());
    }
    if method.is_none() {
        println!("service {} on `{queue}`", described.name);
        for line in described.docs.lines() {
            println!("  {line}");
        }
        println!();
    }
    for method in methods {
        let params: Vec<String> = method
            .params
            .iter()
            .map(|p| format!("{}: {}", p.name, p.rust_type))
            .collect();
        let error = method
            .error
            .as_ref()
            .map(|e| format!(" (fails with {e})"))
            .unwrap_or_default();
        println!("{}({}) -> {}{error}", method.name, params.join(", "), method.returns);
        for line in method.docs.lines() {
            println!("    {line}");
        }
    }
    // What the named types hold, as `ros2 interface show` shows messages.
    if let Some(Value::Object(types)) = &described.types {
        println!("\ntypes:");
        for (name, container) in types {
            println!("  {}", shapes::declaration(name, container));
        }
    }
    Ok(())
}

async fn client(options: &Options, queue: &str) -> Outcome<Client> {
    let backend = options.backend().await?;
    Ok(Client::new(backend, queue).with_timeout(Some(options.timeout)))
}

/// `-d`: `{"args": […], "kwargs": {…}}` as JSON, from `@file`, or `@-`.
fn arguments_from_data(data: &str) -> Outcome<(Vec<Value>, Map<String, Value>)> {
    let text = match data.strip_prefix('@') {
        Some("-") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| Failure::new(failure::USAGE, format!("cannot read stdin: {e}")))?;
            text
        }
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| Failure::new(failure::USAGE, format!("cannot read {path}: {e}")))?,
        None => data.to_owned(),
    };
    let bad = |why: &str| {
        Failure::new(
            failure::USAGE,
            format!("-d wants {{\"args\": [...], \"kwargs\": {{...}}}}: {why}"),
        )
    };
    let Value::Object(mut object) = serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))? else {
        return Err(bad("not an object"));
    };
    let args = match object.remove("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(args)) => args,
        Some(_) => return Err(bad("`args` is not a list")),
    };
    let kwargs = match object.remove("kwargs") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(kwargs)) => kwargs,
        Some(_) => return Err(bad("`kwargs` is not an object")),
    };
    if let Some(other) = object.keys().next() {
        return Err(bad(&format!("unknown member `{other}`")));
    }
    Ok((args, kwargs))
}

/// A value as JSON: pretty for people, one line with `--json`.
pub(crate) fn print_json(options: &Options, value: &Value) {
    if options.json {
        println!("{value}");
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(value).expect("a JSON value always encodes")
        );
    }
}
