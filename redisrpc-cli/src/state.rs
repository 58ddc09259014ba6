//! The `state` commands, through the library's own store, so they read and
//! write exactly as a program sharing the state does.

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Subcommand;
use redis::AsyncCommands;
use redisrpc::layout;
use redisrpc::state::{Event, Layout, State};
use serde_json::{Value, json};

use crate::Options;
use crate::failure::{self, Failure, Outcome};
use crate::rpc::print_json;
use crate::words;

#[derive(Subcommand)]
pub(crate) enum StateCommand {
    /// Print the value at PATH as JSON; a binary value as its label, dtype
    /// and shape.
    ///
    /// Example: redisrpc state get robot.arm.angle
    Get {
        /// A path: `robot.arm.angle`, `robot.joints[2]`.
        path: String,
        /// For a binary array: write its raw bytes to stdout instead.
        #[arg(long)]
        bytes: bool,
    },
    /// Set the value at PATH (JSON, else the text as a string).
    ///
    /// Example: redisrpc state set robot.arm.angle 0.5
    Set { path: String, value: String },
    /// Delete the value at PATH.
    ///
    /// Example: redisrpc state delete robot.arm
    Delete { path: String },
    /// Set the value at PATH and notify its subscribers.
    ///
    /// Example: redisrpc state publish robot.arm '{"angle": 0.5}'
    Publish { path: String, value: String },
    /// List the documents, optionally only those starting with PREFIX.
    ///
    /// Example: redisrpc state ls rob
    Ls { prefix: Option<String> },
    /// Print each update published on a path matching PATTERN, one line
    /// each, as it arrives.
    ///
    /// Example: redisrpc state watch 'robot.*'
    Watch {
        /// A Redis glob over paths: `robot.*`, `robot.arm`.
        pattern: String,
        /// Stop after this many updates.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// Print the rate of updates on PATTERN every second, with the min, max
    /// and standard deviation of the intervals.
    ///
    /// Example: redisrpc state hz 'robot.arm'
    Hz {
        pattern: String,
        /// Stop after this long (default: until interrupted).
        #[arg(long, value_name = "DURATION", value_parser = words::duration)]
        r#for: Option<Duration>,
    },
}

pub(crate) async fn run(options: &Options, layout: Layout, command: StateCommand) -> Outcome {
    let state = State::new(options.backend().await?).with_layout(layout);
    match command {
        StateCommand::Get { path, bytes } => {
            let value: Value = bounded(options, state.get_value(path.as_str())).await?;
            if is_array_marker(&value) {
                let array = bounded(options, state.get_array(path.as_str())).await?;
                if bytes {
                    std::io::stdout()
                        .write_all(array.bytes())
                        .map_err(|e| Failure::new(failure::USAGE, format!("cannot write the bytes: {e}")))?;
                    return Ok(());
                }
                let shape: Vec<String> = array.shape().iter().map(usize::to_string).collect();
                let shape = match shape.as_slice() {
                    [one] => format!("({one},)"),
                    _ => format!("({})", shape.join(", ")),
                };
                if options.json {
                    println!(
                        "{}",
                        json!({"binary": "ndarray", "dtype": array.dtype().name(), "shape": array.shape()})
                    );
                } else {
                    println!("ndarray {} {shape}", array.dtype().name());
                }
                return Ok(());
            }
            print_json(options, &value);
            Ok(())
        }
        StateCommand::Set { path, value } => {
            Ok(bounded(options, state.set(path.as_str(), &words::value(&value))).await?)
        }
        StateCommand::Publish { path, value } => {
            Ok(bounded(options, state.publish(path.as_str(), &words::value(&value))).await?)
        }
        StateCommand::Delete { path } => {
            if bounded(options, state.delete(path.as_str())).await? {
                Ok(())
            } else {
                Err(Failure::new(failure::NOT_FOUND, format!("nothing at `{path}`")))
            }
        }
        StateCommand::Ls { prefix } => ls(options, layout, prefix.as_deref()).await,
        StateCommand::Watch { pattern, count } => {
            let mut updates = bounded(options, state.subscribe(&pattern)).await?;
            let mut seen = 0;
            while count.is_none_or(|count| seen < count) {
                match updates.next().await {
                    Some(Event::Update(update)) => {
                        seen += 1;
                        if options.json {
                            println!(
                                "{}",
                                json!({"path": update.path.to_string(), "value": update.value, "version": update.version})
                            );
                        } else {
                            println!("{} {}", update.path, update.value);
                        }
                    }
                    Some(Event::Disconnected) => eprintln!("redisrpc: disconnected; updates may be missed"),
                    Some(Event::Resubscribed) => eprintln!("redisrpc: resubscribed"),
                    None => return Err(Failure::new(failure::CONNECTION, "the subscription ended")),
                }
            }
            Ok(())
        }
        StateCommand::Hz { pattern, r#for } => hz(options, &state, &pattern, r#for).await,
    }
}

/// `state ls`: the hashes that are documents (fields `json` and `version`),
/// or in REEM's layout the RedisJSON documents but their metadata.
async fn ls(options: &Options, kept_in: Layout, prefix: Option<&str>) -> Outcome {
    let backend = options.backend().await?;
    let mut redis = backend.connection();
    let pattern = format!("{}*", layout::glob_escape(prefix.unwrap_or("")));
    let mut documents = Vec::new();
    if kept_in == Layout::Reem {
        for key in backend.scan(&pattern, Some("ReJSON-RL")).await? {
            if !key.ends_with(&layout::reem::metadata_key("")) {
                documents.push(key);
            }
        }
        return print_documents(options, documents);
    }
    for key in backend.scan(&pattern, Some("hash")).await? {
        if key.starts_with(layout::STATE_PREFIX) || key.starts_with(layout::RPC_PREFIX) {
            continue;
        }
        if redis.hexists(&key, "json").await? {
            documents.push(key);
        }
    }
    print_documents(options, documents)
}

fn print_documents(options: &Options, mut documents: Vec<String>) -> Outcome {
    documents.sort();
    documents.dedup();
    if options.json {
        println!("{}", json!(documents));
    } else {
        for document in documents {
            println!("{document}");
        }
    }
    Ok(())
}

/// `state hz`: one line a second, over the updates since the start.
async fn hz(options: &Options, state: &State, pattern: &str, duration: Option<Duration>) -> Outcome {
    let mut updates = bounded(options, state.subscribe(pattern)).await?;
    let started = Instant::now();
    let mut last: Option<Instant> = None;
    let mut intervals: Vec<f64> = Vec::new();
    let mut next_report = started + Duration::from_secs(1);
    loop {
        let until = match duration {
            Some(duration) => next_report.min(started + duration),
            None => next_report,
        };
        match tokio::time::timeout_at(until.into(), updates.next()).await {
            Ok(Some(Event::Update(_))) => {
                let now = Instant::now();
                if let Some(last) = last {
                    intervals.push(now.duration_since(last).as_secs_f64());
                }
                last = Some(now);
            }
            Ok(Some(_)) => {}
            Ok(None) => return Err(Failure::new(failure::CONNECTION, "the subscription ended")),
            Err(_) => {
                report(options, &intervals);
                next_report += Duration::from_secs(1);
                if duration.is_some_and(|duration| started.elapsed() >= duration) {
                    return Ok(());
                }
            }
        }
    }
}

fn report(options: &Options, intervals: &[f64]) {
    if intervals.is_empty() {
        if options.json {
            println!("{}", json!({"rate_hz": 0.0, "samples": 0}));
        } else {
            println!("no updates yet");
        }
        return;
    }
    let n = intervals.len() as f64;
    let mean = intervals.iter().sum::<f64>() / n;
    let min = intervals.iter().copied().fold(f64::INFINITY, f64::min);
    let max = intervals.iter().copied().fold(0.0, f64::max);
    let std_dev = (intervals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    if options.json {
        println!(
            "{}",
            json!({"rate_hz": 1.0 / mean, "min_s": min, "max_s": max, "std_dev_s": std_dev, "samples": intervals.len()})
        );
    } else {
        println!(
            "average rate: {:.3} Hz  min: {:.4}s max: {:.4}s std dev: {:.5}s window: {}",
            1.0 / mean,
            min,
            max,
            std_dev,
            intervals.len() + 1
        );
    }
}

fn is_array_marker(value: &Value) -> bool {
    value
        .as_object()
        .filter(|map| map.len() == 1)
        .and_then(|map| map.get("$binary"))
        .and_then(|inner| inner.get("label"))
        == Some(&json!("ndarray"))
}

/// A store operation within the timeout.
async fn bounded<T>(options: &Options, future: impl Future<Output = redisrpc::Result<T>>) -> Outcome<T> {
    match tokio::time::timeout(options.timeout, future).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(Failure::new(
            failure::TIMEOUT,
            format!("Redis did not answer within {:?}", options.timeout),
        )),
    }
}
