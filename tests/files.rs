//! The sandbox files API as Mesos tools use it: `/files/read`, `/files/browse`
//! and `/files/download` on an agent's sandboxes, by virtual path
//! (`/tasks/<id>/...`) or by absolute path, and never a byte from outside
//! the sandboxes, however the path is spelled.
//!
//! The agent's router is served in-process over real HTTP; the last tests run
//! the real binary with both roles behind one listener, so the composition with
//! the master's relay is exercised as a user meets it.

use crate::common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use reqwest::{StatusCode, Url};
use serde_json::Value;

const KEY: &str = "secret-agent-key-3f1c";

/// A work dir as the agent lays it out: `agent.key`, and sandboxes for
/// tasks `t1` and `t2`.
struct WorkDir {
    _dir: tempfile::TempDir,
    work: PathBuf,
    sandboxes: PathBuf,
}

fn work_dir() -> WorkDir {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let sandboxes = work.join("sandboxes");
    std::fs::create_dir_all(sandboxes.join("t1/logs")).unwrap();
    std::fs::create_dir_all(sandboxes.join("t2")).unwrap();
    std::fs::write(work.join("agent.key"), KEY).unwrap();
    std::fs::write(sandboxes.join("t1/stdout"), "0123456789").unwrap();
    std::fs::write(sandboxes.join("t1/logs/app.log"), "log line\n").unwrap();
    std::fs::write(sandboxes.join("t2/stdout"), "task two").unwrap();
    WorkDir {
        _dir: dir,
        work,
        sandboxes,
    }
}

/// Serves the agent's files router on 127.0.0.1; its base URL.
async fn serve_agent(sandboxes: &Path) -> String {
    let app = meso::agent::files::router(sandboxes.to_path_buf());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// GET `base/route` with the query pairs (properly encoded): status, body.
async fn get(base: &str, route: &str, query: &[(&str, &str)]) -> (StatusCode, String) {
    get_with(base, route, query, None).await
}

async fn get_with(
    base: &str,
    route: &str,
    query: &[(&str, &str)],
    header: Option<(&str, &str)>,
) -> (StatusCode, String) {
    let mut url = Url::parse(&format!("{base}{route}")).unwrap();
    url.query_pairs_mut().extend_pairs(query);
    let mut req = common::client().get(url);
    if let Some((k, v)) = header {
        req = req.header(k, v);
    }
    let r = req.send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test]
async fn read_by_offset_and_length() {
    let w = work_dir();
    let base = serve_agent(&w.sandboxes).await;
    let path = "/tasks/t1/stdout";
    let read = |offset: &'static str, length: &'static str| {
        let base = base.clone();
        async move {
            let mut q = vec![("path", path)];
            if !offset.is_empty() {
                q.push(("offset", offset));
            }
            if !length.is_empty() {
                q.push(("length", length));
            }
            let (status, body) = get(&base, "/files/read", &q).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            json(&body)
        }
    };
    assert_eq!(
        read("2", "3").await,
        serde_json::json!({"data": "234", "offset": 2})
    );
    assert_eq!(
        read("7", "").await["data"],
        "789",
        "length defaults to the end"
    );
    assert_eq!(read("7", "-1").await["data"], "789");
    assert_eq!(read("8", "100").await["data"], "89");
    assert_eq!(read("0", "0").await["data"], "");
    assert_eq!(
        read("50", "5").await,
        serde_json::json!({"data": "", "offset": 50}),
        "past the end: nothing, the offset as asked"
    );
    // The web UI's size probe; Mesos also treats a missing offset as -1.
    let probe = serde_json::json!({"data": "", "offset": 10});
    assert_eq!(read("-1", "").await, probe);
    assert_eq!(read("", "").await, probe);
    // The .json alias Mesos served before 1.8.
    let (status, body) = get(
        &base,
        "/files/read.json",
        &[("path", path), ("offset", "0")],
    )
    .await;
    assert_eq!(
        (status, json(&body)["data"].clone()),
        (StatusCode::OK, "0123456789".into())
    );
}

#[tokio::test]
async fn one_read_returns_at_most_one_mebibyte() {
    let w = work_dir();
    let big = "x".repeat(3 * 1024 * 1024);
    std::fs::write(w.sandboxes.join("t1/big"), &big).unwrap();
    let base = serve_agent(&w.sandboxes).await;
    let (status, body) = get(
        &base,
        "/files/read",
        &[("path", "/tasks/t1/big"), ("offset", "0")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["data"].as_str().unwrap().len(), 1024 * 1024);
}

#[tokio::test]
async fn absolute_paths_inside_the_sandboxes_are_served() {
    let w = work_dir();
    let base = serve_agent(&w.sandboxes).await;
    let abs = w.sandboxes.join("t2/stdout").display().to_string();
    let (status, body) = get(&base, "/files/read", &[("path", &abs), ("offset", "0")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(json(&body)["data"], "task two");
}

#[tokio::test]
async fn browse_lists_a_directory_like_mesos() {
    let w = work_dir();
    symlink("stdout", w.sandboxes.join("t1/latest")).unwrap();
    let base = serve_agent(&w.sandboxes).await;
    let (status, body) = get(&base, "/files/browse", &[("path", "/tasks/t1/")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list = json(&body);
    let entries = list.as_array().unwrap();
    let paths: Vec<&str> = entries
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["/tasks/t1/latest", "/tasks/t1/logs", "/tasks/t1/stdout"]
    );
    let stdout = &entries[2];
    assert_eq!(stdout["size"], 10);
    assert_eq!(stdout["nlink"], 1);
    assert_eq!(stdout["mode"].as_str().unwrap().len(), 10);
    assert!(
        stdout["mode"].as_str().unwrap().starts_with("-rw"),
        "{stdout}"
    );
    assert!(stdout["mtime"].as_i64().unwrap() > 1_600_000_000);
    assert!(!stdout["uid"].as_str().unwrap().is_empty());
    assert!(!stdout["gid"].as_str().unwrap().is_empty());
    assert!(entries[1]["mode"].as_str().unwrap().starts_with('d'));
    assert!(entries[0]["mode"].as_str().unwrap().starts_with('l'));

    // By absolute path, entries read back in the same spelling.
    let abs = w.sandboxes.join("t1/logs").display().to_string();
    let (status, body) = get(&base, "/files/browse.json", &[("path", &abs)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(json(&body)[0]["path"], format!("{abs}/app.log"));
}

#[tokio::test]
async fn download_returns_the_raw_bytes() {
    let w = work_dir();
    let bytes: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
    std::fs::write(w.sandboxes.join("t1/blob.bin"), &bytes).unwrap();
    let base = serve_agent(&w.sandboxes).await;
    let mut url = Url::parse(&format!("{base}/files/download")).unwrap();
    url.query_pairs_mut()
        .append_pair("path", "/tasks/t1/blob.bin");
    let r = common::client().get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-length"], "200000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
}

#[tokio::test]
async fn nothing_outside_the_sandboxes_is_ever_served() {
    let w = work_dir();
    let t1 = w.sandboxes.join("t1");
    symlink(w.work.join("agent.key"), t1.join("key-link")).unwrap();
    symlink(&w.work, t1.join("work-link")).unwrap();
    symlink("/etc", t1.join("etc-link")).unwrap();
    let base = serve_agent(&w.sandboxes).await;
    let key = w.work.join("agent.key").display().to_string();
    let dotted = format!("{}/t1/../../agent.key", w.sandboxes.display());
    let refused = [
        "/tasks/t1/../../agent.key",
        "/tasks/t1/../t2/stdout", // a virtual path stays in its own task
        "/tasks/t1/key-link",
        "/tasks/t1/work-link/agent.key",
        "/tasks/t1/etc-link/passwd",
        "/tasks/../agent.key",
        key.as_str(),
        dotted.as_str(),
        "/etc/passwd",
    ];
    for path in refused {
        for route in ["/files/read", "/files/download", "/files/browse"] {
            let (status, body) = get(&base, route, &[("path", path), ("offset", "0")]).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{route} {path}: {body}");
            assert!(
                !body.contains(KEY) && !body.contains("root:"),
                "{route} {path}: {body}"
            );
        }
    }
    // Refused exactly as a missing file is: the API tells nothing of the disk.
    let (_, missing) = get(&base, "/files/read", &[("path", "/tasks/t1/no-such")]).await;
    let (_, outside) = get(&base, "/files/read", &[("path", "/tasks/t1/key-link")]).await;
    assert_eq!(
        missing.replace("/tasks/t1/no-such", "P"),
        outside.replace("/tasks/t1/key-link", "P")
    );
}

#[tokio::test]
async fn missing_files_and_tasks_are_404_with_a_message() {
    let w = work_dir();
    let base = serve_agent(&w.sandboxes).await;
    for path in [
        "/tasks/t1/nope",
        "/tasks/no-such-task/stdout",
        "relative/path",
    ] {
        let (status, body) = get(&base, "/files/read", &[("path", path), ("offset", "0")]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            json(&body)["message"].as_str().unwrap().contains(path),
            "{body}"
        );
    }
}

#[tokio::test]
async fn bad_parameters_are_400_naming_the_parameter() {
    let w = work_dir();
    let base = serve_agent(&w.sandboxes).await;
    let path = "/tasks/t1/stdout";
    type Query<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&str, Query, &str); 6] = [
        (
            "/files/read",
            &[("path", path), ("offset", "abc")],
            "offset: 'abc'",
        ),
        (
            "/files/read",
            &[("path", path), ("offset", "-2")],
            "offset: '-2'",
        ),
        (
            "/files/read",
            &[("path", path), ("length", "1.5")],
            "length: '1.5'",
        ),
        ("/files/read", &[("offset", "0")], "path: missing"),
        (
            "/files/read",
            &[("path", "/tasks/t1/logs")],
            "path: is a directory",
        ),
        (
            "/files/download",
            &[("path", "/tasks/t1")],
            "path: is a directory",
        ),
    ];
    for (route, query, message) in cases {
        let (status, body) = get(&base, route, query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{route} {query:?}: {body}");
        let text = json(&body)["message"].as_str().unwrap().to_string();
        assert!(text.starts_with(message), "{route} {query:?}: {text}");
    }
}

// ------------------------------------------------- the real binary, both roles

/// One `meso node --roles master,agent` process: the files API and the
/// master's relay behind one listener.
fn spawn_combined(dir: &Path, work: &Path) -> common::Proc {
    let ip = common::loopback_ip();
    let mut args = common::single_master_args(&ip, &dir.join("data"));
    args[0] = "node".into();
    args.extend(
        ["--roles", "master,agent", "--work-dir"]
            .iter()
            .map(|s| s.to_string()),
    );
    args.push(work.display().to_string());
    common::Proc::spawn(
        "combined",
        &args,
        &dir.join("combined.log"),
        "MESO_AGENT_HTTP",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_both_roles_serves_its_sandboxes_and_relays_the_rest() {
    let w = work_dir();
    let logs = tempfile::tempdir().unwrap();
    let node = spawn_combined(logs.path(), &w.work);
    let base = format!("http://{}", node.http);

    // Its own sandbox: answered by the agent role.
    let (status, body) = get(
        &base,
        "/files/read",
        &[("path", "/tasks/t1/stdout"), ("offset", "0")],
    )
    .await;
    assert_eq!(
        (status, json(&body)["data"].clone()),
        (StatusCode::OK, "0123456789".into()),
        "{body}"
    );

    // Not here: the master role looks the task up; the registry has no such task.
    let (status, body) = get(&base, "/files/read", &[("path", "/tasks/elsewhere/stdout")]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(json(&body)["message"], "path: no task 'elsewhere'");

    // A request some master already relayed is never relayed again.
    let (status, body) = get_with(
        &base,
        "/files/read",
        &[("path", "/tasks/elsewhere/stdout")],
        Some(("X-Meso-Files-Proxied", "1")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        json(&body)["message"]
            .as_str()
            .unwrap()
            .contains("no sandbox on this node"),
        "{body}"
    );

    // Outside the sandboxes: refused, whichever role would have answered.
    let key = w.work.join("agent.key").display().to_string();
    for path in [key.as_str(), "/tasks/t1/../../agent.key"] {
        let (status, body) = get(&base, "/files/download", &[("path", path)]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(!body.contains(KEY));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_alone_serves_only_virtual_paths() {
    let logs = tempfile::tempdir().unwrap();
    let ip = common::loopback_ip();
    let args = common::single_master_args(&ip, &logs.path().join("data"));
    let master = common::spawn_master("master", &args, &logs.path().join("master.log"));
    let base = format!("http://{}", master.http);
    let (status, body) = get(&base, "/files/browse", &[("path", "/var/log")]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        json(&body)["message"]
            .as_str()
            .unwrap()
            .contains("/tasks/<task_id>"),
        "{body}"
    );
    let (status, body) = get(&base, "/files/browse", &[("path", "/tasks/t9")]).await;
    assert_eq!(
        (status, json(&body)["message"].clone()),
        (StatusCode::NOT_FOUND, "path: no task 't9'".into())
    );
    let (status, body) = get(&base, "/files/read", &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
