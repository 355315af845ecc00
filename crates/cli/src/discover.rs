//! `jaunt discover`: the instances of a service registered in etcd.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use jaunt::{code, Status};
use jaunt_cluster::discovery::{Discovery, EtcdDiscovery};
use jaunt_cluster::registry::EtcdConfig;
use jaunt_cluster::Endpoints;
use serde_json::json;

use crate::exit::Failure;

/// The arguments of `discover`.
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// The service's name.
    pub service: String,
    /// An etcd client URL (`http://host:2379`); repeat for several.
    #[arg(long, value_name = "URL", required = true)]
    pub etcd: Vec<String>,
    /// The registry's key prefix.
    #[arg(long, value_name = "P", default_value = "/jaunt/services")]
    pub prefix: String,
    /// Keep printing the set each time it changes, until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
    /// How long connecting to etcd may take.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
}

/// Prints `{"service", "instances": [...]}` as one JSON line (instances by id), once or on
/// every change. etcd unreachable: exit 4.
pub async fn discover(args: DiscoverArgs) -> Result<ExitCode, Failure> {
    let config = EtcdConfig::new(args.etcd.clone())
        .prefix(args.prefix.clone())
        .connect_timeout(args.connect_timeout);
    let discovery = EtcdDiscovery::new(config).map_err(|e| Failure::Input(e.to_string()))?;
    let mut set = discovery.watch(&args.service).await.map_err(|e| {
        Failure::Status(
            Status::new(code::DIAL_FAILED, "etcd unreachable").with_cause(e.to_string()),
        )
    })?;
    print_set(&args.service, &set.borrow_and_update());
    if !args.watch {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        tokio::select! {
            changed = set.changed() => {
                if changed.is_err() {
                    return Ok(ExitCode::SUCCESS);
                }
                print_set(&args.service, &set.borrow_and_update());
            }
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
    }
}

fn print_set(service: &str, set: &Endpoints) {
    let instances: Vec<_> = set.values().collect();
    let line = json!({ "service": service, "instances": instances });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
