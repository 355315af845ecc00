#!/usr/bin/env bash
# The project's tests. Installs what they need when it is missing (Debian packages:
# etcd-server for the cluster tests against a real etcd, protobuf-compiler for the etcd
# client's build, iproute2 for the many-hosts test's network namespaces, prometheus for the
# metrics endpoint test's promtool), then runs the workspace's tests, the cluster crate's
# etcd tests and the CLI's `discover` tests. Run it as root (the namespaces need it).
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
# The cluster's many-hosts test builds network namespaces with `ip` (as root).
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
# The metrics endpoint test checks the scraped text with `promtool check metrics`.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
    echo "test.sh: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"
fi

cargo test --workspace
# The etcd registry and discovery tests, and the many-hosts test (three hosts in network
# namespaces registering in one etcd: needs root).
cargo test -p jaunt-cluster --features etcd
cargo test -p jaunt-cli --features etcd --test discover
