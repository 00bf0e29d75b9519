//! The Python `marathon` client (0.13.0, installed by scripts/test.sh)
//! drives meso's scheduler through every call it has that meso serves:
//! tests/python/marathon_client.py, against a real master and agent.

use crate::common;

use std::process::Command;

use common::Site;

#[tokio::test]
async fn the_python_marathon_client_works_unchanged() {
    let site = Site::start(&[]).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/marathon_client.py"
    );
    let url = format!("http://{}", site.master.http);
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .env("MARATHON_URL", url)
            .output()
    })
    .await
    .expect("the script's thread")
    .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("all ok"),
        "the marathon client failed ({}):\n{stdout}\n{stderr}\nmaster log:\n{}",
        out.status,
        site.master.log_text()
    );
}
