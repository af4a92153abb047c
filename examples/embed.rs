//! dsh as a library, the scripting way: a Rhai engine with every dsh command as a function
//! returning data (`put`, `get`, `status`, `chat::send`, `scenario::run`, …), run against a
//! throwaway 3-node cluster.
//!
//! `cargo run --example embed` (uses the `dsh` binary built alongside, for the node processes).

use dsh::client::Client;
use dsh::cluster::{wait_ready, Ephemeral};
use dsh::shell::{output::Style, Ctx, Local};
use std::sync::Arc;
use std::time::Duration;

const SCRIPT: &str = r#"
    for i in 1..=5 { put(`city:${i}`, `visitors=${i * 100}`); }
    let r = get("city:3");
    let nodes = status().map(|n| `${n.id} ${n.role} term ${n.term}`);
    #{ city3: r, nodes: nodes, keys: scan("city:").len() }
"#;

fn main() -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let dsh = exe.parent().and_then(|d| d.parent()).map(|d| d.join("dsh")).filter(|p| p.exists());
    let Some(dsh) = dsh else { anyhow::bail!("build the dsh binary first: cargo build") };
    let cluster = Ephemeral::start_with(&dsh, 3)?;

    let rt = tokio::runtime::Runtime::new()?;
    let client = {
        let _enter = rt.enter();
        Arc::new(Client::new(&cluster.cluster.file, Duration::from_secs(5))?)
    };
    rt.block_on(wait_ready(&client, 3, Duration::from_secs(30)))?;
    let local = Local { cluster: cluster.cluster.clone(), tied_to_parent: true };
    let ctx = Arc::new(Ctx::new(client, Style::Plain, Some(local), false, Arc::new(dsh::shell::NoScenarios)));

    // Rhai is synchronous: commands block on the runtime's handle, so the engine runs on a
    // plain thread, never on a tokio worker.
    let handle = rt.handle().clone();
    let result = std::thread::spawn(move || {
        let engine = dsh::script::build_engine(ctx, handle);
        engine.eval::<rhai::Dynamic>(SCRIPT).map(|v| v.to_string()).map_err(|e| e.to_string())
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the script's thread panicked"))?;
    println!("{}", result.map_err(anyhow::Error::msg)?);
    Ok(())
}
