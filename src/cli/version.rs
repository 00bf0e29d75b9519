use clap::Args;

#[derive(Args)]
pub struct VersionArgs {
    /// Print as JSON
    #[arg(long)]
    json: bool,
}

pub fn run(args: VersionArgs) -> anyhow::Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    if args.json {
        println!(
            "{}",
            serde_json::json!({"version": version, "mesos_api": crate::master::MESOS_API_VERSION})
        );
    } else {
        println!("meso {version}");
    }
    Ok(())
}
