//! DNS discovery with the system resolver: `localhost`, and a name that does not resolve.

use std::time::Duration;

use jaunt_cluster::discovery::{Discovery, DnsDiscovery};
use jaunt_cluster::ClusterError;

#[tokio::test]
async fn localhost_resolves_to_loopback_instances_of_the_service() {
    let dns = DnsDiscovery::new("localhost", 7007).interval(Duration::from_millis(50));
    let mut kv = dns.watch("kv").await.unwrap();
    let set = kv.borrow_and_update().clone();
    assert!(set.contains_key("127.0.0.1:7007"), "{set:?}");
    for (id, instance) in &set {
        assert_eq!(instance.service, "kv");
        assert_eq!(instance.addr(), Some(id.as_str()));
        assert!(instance.addr().unwrap().ends_with(":7007"));
    }
    // Resolved again and again: the same answer publishes nothing new.
    let again = tokio::time::timeout(Duration::from_millis(300), kv.changed()).await;
    assert!(again.is_err(), "an unchanged answer was published again");
    assert_eq!(*kv.borrow(), set);
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_a_clear_error() {
    let error = DnsDiscovery::new("no-such-host.invalid", 1)
        .watch("kv")
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClusterError::Unreachable { backend: "dns", .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("no-such-host.invalid"),
        "{error}"
    );
}
