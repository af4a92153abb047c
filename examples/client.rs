//! dsh as a library: start a throwaway 3-node cluster, write through one node, read back
//! from every node's own copy.
//!
//! `cargo run --example client` (uses the `dsh` binary built alongside, for the node processes).

use dsh::client::{Client, Target};
use dsh::cluster::{wait_ready, Ephemeral};
use dsh::proto::{node_name, Request, Response};
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    // Node processes are this binary's sibling `dsh`; the cluster dies with this process.
    let exe = std::env::current_exe()?;
    let dsh = exe.parent().and_then(|d| d.parent()).map(|d| d.join("dsh")).filter(|p| p.exists());
    let Some(dsh) = dsh else { anyhow::bail!("build the dsh binary first: cargo build") };
    let cluster = Ephemeral::start_with(&dsh, 3)?;

    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let client = Client::new(&cluster.cluster.file, Duration::from_secs(5))?;
        let leader = wait_ready(&client, 3, Duration::from_secs(30)).await?;
        println!("leader: {}", node_name(leader));

        let put = Request::Put { key: "greeting".into(), value: "hello".into() };
        let served = client.call(Target::Node(2), put).await?;
        println!("written via {} ({:?})", node_name(served.node), served.value);

        tokio::time::sleep(Duration::from_millis(200)).await;
        for n in 1..=3 {
            let r = client.call(Target::Node(n), Request::Get { key: "greeting".into(), stale: true }).await?;
            if let Response::Value(v) = r.value {
                println!("{}: {:?}", node_name(n), v.map(|v| v.value));
            }
        }
        Ok::<_, anyhow::Error>(())
    })
}
