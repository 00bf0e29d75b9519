//! Every bad input: the process prints exactly one line, `error: ...`, on
//! stderr, exits with a non-zero code, prints no `export` line, and changes
//! nothing on disk. Run with the default log level (what a user sees).

use crate::common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const RUN_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `meso ARGS`, expecting a refusal; checks the one-line error and that
/// nothing under `watched` changed. Returns the error line.
fn refused(args: &[&str], watched: &[&Path]) -> String {
    let before: Vec<_> = watched.iter().map(|p| snapshot_tree(p)).collect();
    let out = run(args, RUN_TIMEOUT);
    let after: Vec<_> = watched.iter().map(|p| snapshot_tree(p)).collect();
    assert!(
        out.code().is_some_and(|c| c != 0),
        "`meso {}` should fail, got {:?}\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        out.stdout,
        out.stderr
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "`meso {}`: stderr should be exactly one line, got:\n{}",
        args.join(" "),
        out.stderr
    );
    assert!(lines[0].starts_with("error: "), "{}", lines[0]);
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout on failure, got {:?}",
        out.stdout
    );
    for ((p, b), a) in watched.iter().zip(&before).zip(&after) {
        let diff = tree_diff(b, a);
        assert!(
            diff.is_empty(),
            "`meso {}` changed {} on disk: {diff:?} (its error: {})",
            args.join(" "),
            p.display(),
            lines[0]
        );
    }
    lines[0].to_string()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A master's store with one weight in it, stopped cleanly. `peers`: a static
/// membership to bootstrap (the other members need not run).
async fn make_store(dir: &Path, peers: Option<&str>) -> (Vec<String>, PathBuf) {
    let ip = loopback_ip();
    let data = dir.join("data");
    let mut args = single_master_args(&ip, &data);
    if let Some(p) = peers {
        args.extend(["--id".into(), "1".into(), "--peers".into(), p.into()]);
    }
    let mut m = spawn_master("store maker", &args, &dir.join("maker.log"));
    if peers.is_none() {
        write_retry(&client(), std::slice::from_ref(&m.http), &[("kept", 5.0)]).await;
    }
    assert!(m.terminate(Duration::from_secs(15)).success());
    (args, data)
}

/// The store still starts with its own arguments and holds its weight.
async fn still_works(dir: &Path, args: &[String]) {
    let m = spawn_master("store check", args, &dir.join("check.log"));
    let want = [("kept".to_string(), 5.0)].into_iter().collect();
    assert_eq!(
        wait_until_weights(&m.http, &want).await,
        want,
        "the store lost its data"
    );
}

/// `meso master` with its HTTP or its Raft port taken: refused, naming the
/// address and which port it was, and no data dir created.
fn port_in_use(which: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ip = loopback_ip();
    let taken = TcpListener::bind(format!("{ip}:0")).unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    let free = format!("{ip}:0");
    let (http, raft) = if which == "HTTP" {
        (&busy, &free)
    } else {
        (&free, &busy)
    };
    let data = dir.path().join("data");
    let args = [
        "master",
        "--http",
        http,
        "--raft",
        raft,
        "--data-dir",
        &s(&data),
    ];
    let err = refused(&args, &[&data]);
    assert!(
        err.contains(&format!("cannot listen on {busy} for {which}")),
        "{err}"
    );
    assert!(
        !data.exists(),
        "no data dir is created when a port is taken"
    );
}

#[test]
fn http_port_in_use() {
    port_in_use("HTTP");
}

#[test]
fn raft_port_in_use() {
    port_in_use("Raft");
}

#[test]
fn up_port_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let ip = loopback_ip();
    let taken = TcpListener::bind(format!("{ip}:0")).unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let data = dir.path().join("cluster");
    let err = refused(&["up", "--http", &addr, "--data-dir", &s(&data)], &[&data]);
    assert!(err.contains(&addr) && err.contains("HTTP"), "{err}");
}

/// `meso master` and `meso up` on `data` both refuse it, naming it and `why`.
fn both_refuse(data: &Path, why: &str) {
    let http = format!("{}:0", loopback_ip());
    let path = s(data);
    let master = [
        "master",
        "--http",
        &http,
        "--raft",
        &http,
        "--data-dir",
        &path,
    ];
    let up = ["up", "--http", &http, "--data-dir", &path];
    for args in [&master[..], &up[..]] {
        let err = refused(args, &[data]);
        assert!(err.contains(why) && err.contains(&path), "{err}");
    }
}

#[test]
fn data_dir_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("afile");
    std::fs::write(&file, b"some bytes").unwrap();
    both_refuse(&file, "is not a directory");
}

#[test]
fn foreign_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("someone-elses");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("notes.txt"), b"precious").unwrap();
    std::fs::create_dir(data.join("photos")).unwrap();
    both_refuse(&data, "is not a meso data dir");
}

#[test]
fn foreign_data_dir_on_join() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("someone-elses");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("notes.txt"), b"precious").unwrap();
    let ip = loopback_ip();
    let http = format!("{ip}:0");
    // Nothing listens at the seed: the data dir is checked first anyway.
    let seed = format!("{ip}:1");
    let err = refused(
        &[
            "master",
            "--join",
            &seed,
            "--http",
            &http,
            "--raft",
            &http,
            "--data-dir",
            &s(&data),
        ],
        &[&data],
    );
    assert!(err.contains("is not a meso data dir"), "{err}");
}

#[test]
fn corrupt_store_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let garbage: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(data.join("registry.redb"), &garbage).unwrap();
    let http = format!("{}:0", loopback_ip());
    let err = refused(
        &[
            "master",
            "--http",
            &http,
            "--raft",
            &http,
            "--data-dir",
            &s(&data),
        ],
        &[&data],
    );
    assert!(
        err.contains("corrupt"),
        "the error should say the store is corrupt: {err}"
    );
    assert!(
        err.contains(&s(&data.join("registry.redb"))),
        "and name the file: {err}"
    );
    assert_eq!(std::fs::read(data.join("registry.redb")).unwrap(), garbage);
}

#[test]
fn corrupt_store_short_text() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("registry.redb"), b"hello\n").unwrap();
    let http = format!("{}:0", loopback_ip());
    let err = refused(
        &[
            "master",
            "--http",
            &http,
            "--raft",
            &http,
            "--data-dir",
            &s(&data),
        ],
        &[&data],
    );
    assert!(
        err.contains("corrupt"),
        "the error should say the store is corrupt: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_store_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (args, data) = make_store(dir.path(), None).await;
    let store = data.join("registry.redb");
    let bytes = std::fs::read(&store).unwrap();
    std::fs::write(&store, &bytes[..bytes.len() / 3]).unwrap();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let err = refused(&args, &[&data]);
    assert!(err.contains("corrupt"), "{err}");
    assert!(err.contains(&s(&store)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_of_another_master() {
    let dir = tempfile::tempdir().unwrap();
    let (args, data) = make_store(dir.path(), None).await;
    let http = format!("{}:0", loopback_ip());
    let before = snapshot_tree(&data);
    let out = run(
        &[
            "master",
            "--id",
            "2",
            "--http",
            &http,
            "--raft",
            &http,
            "--data-dir",
            &s(&data),
        ],
        RUN_TIMEOUT,
    );
    let after = snapshot_tree(&data);
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    assert!(out.stderr.contains("belongs to master 1"), "{}", out.stderr);
    assert!(
        out.stderr.contains("--id 1"),
        "it says how to fix it: {}",
        out.stderr
    );
    // Nothing destroyed: the right master still starts from it ...
    still_works(dir.path(), &args).await;
    // ... and nothing was even rewritten.
    let diff = tree_diff(&before, &after);
    assert!(
        diff.is_empty(),
        "refusing the store still changed it: {diff:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_disagree_with_the_stored_membership() {
    let dir = tempfile::tempdir().unwrap();
    let (ip, base) = loopback(3);
    let peers3 = format!("1={ip}:{base},2={ip}:{},3={ip}:{}", base + 1, base + 2);
    let (_, data) = make_store(dir.path(), Some(&peers3)).await;
    let peers2 = format!("1={ip}:{base},2={ip}:{}", base + 1);
    let http = format!("{ip}:0");
    let before = snapshot_tree(&data);
    let out = run(
        &[
            "master",
            "--id",
            "1",
            "--peers",
            &peers2,
            "--http",
            &http,
            "--data-dir",
            &s(&data),
        ],
        RUN_TIMEOUT,
    );
    let after = snapshot_tree(&data);
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    let err = out.stderr.trim();
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("--peers names masters 1,2"), "{err}");
    assert!(err.contains("holds membership 1,2,3"), "{err}");
    assert!(err.contains(&s(&data)), "it names the store: {err}");
    // A store can be resumed with the right peers, or without any.
    let m = spawn_master(
        "resumed",
        &[
            "master".into(),
            "--preset".into(),
            "ci".into(),
            "--http".into(),
            http.clone(),
            "--data-dir".into(),
            s(&data),
            "--raft".into(),
            format!("{ip}:{base}"),
        ],
        &dir.path().join("resumed.log"),
    );
    assert_eq!(m.id, Some(1));
    drop(m);
    let diff = tree_diff(&before, &after);
    assert!(
        diff.is_empty(),
        "refusing the peers still changed the store: {diff:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_in_use_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let (args, data) = make_store(dir.path(), None).await;
    let first = spawn_master("first", &args, &dir.path().join("first.log"));
    let http = format!("{}:0", loopback_ip());
    let out = run(
        &[
            "master",
            "--http",
            &http,
            "--raft",
            &http,
            "--data-dir",
            &s(&data),
        ],
        RUN_TIMEOUT,
    );
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("error: ") && out.stderr.contains("in use"),
        "{}",
        out.stderr
    );
    // The first one is unharmed.
    let want = [("kept".to_string(), 5.0)].into_iter().collect();
    assert_eq!(wait_until_weights(&first.http, &want).await, want);
    assert_eq!(
        put_weights(&client(), &first.http, &[("more", 1.0)])
            .await
            .unwrap(),
        200
    );
}

#[test]
fn unknown_config_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http = format!("{}:0", loopback_ip());
    for (yaml, key) in [
        ("cluster: x\ncolour: blue\n", "colour"),
        ("raft:\n  tikc_ms: 5\n", "tikc_ms"),
    ] {
        let file = dir.path().join("my-config.yaml");
        std::fs::write(&file, yaml).unwrap();
        let err = refused(
            &[
                "master",
                "--config",
                &s(&file),
                "--http",
                &http,
                "--data-dir",
                &s(&data),
            ],
            &[&data, &file],
        );
        assert!(err.contains(key), "the error names the key {key}: {err}");
        assert!(err.contains(&s(&file)), "the error names the file: {err}");
        assert!(!data.exists());
        // The same for `meso up`, and for a preset given as a file.
        let err = refused(
            &["up", "--config", &s(&file), "--data-dir", &s(&data)],
            &[&data],
        );
        assert!(err.contains(key) && err.contains(&s(&file)), "{err}");
        let err = refused(
            &[
                "master",
                "--preset",
                &s(&file),
                "--http",
                &http,
                "--data-dir",
                &s(&data),
            ],
            &[&data],
        );
        assert!(err.contains(key) && err.contains(&s(&file)), "{err}");
    }
}

#[test]
fn unknown_preset_and_missing_config() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let err = refused(
        &["master", "--preset", "nosuch", "--data-dir", &s(&data)],
        &[&data],
    );
    assert!(err.contains("nosuch"), "{err}");
    let missing = dir.path().join("missing.yaml");
    let err = refused(
        &["master", "--config", &s(&missing), "--data-dir", &s(&data)],
        &[&data],
    );
    assert!(err.contains(&s(&missing)), "{err}");
}

#[test]
fn bad_peers_syntax() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let http = format!("{}:0", loopback_ip());
    for peers in [
        "1=abc",
        "x=127.0.0.1:1",
        "0=127.0.0.1:1",
        "1=127.0.0.1:1,1=127.0.0.1:2",
        "1=127.0.0.1:99999",
        "127.0.0.1:1",
    ] {
        let err = refused(
            &[
                "master",
                "--peers",
                peers,
                "--http",
                &http,
                "--data-dir",
                &s(&data),
            ],
            &[&data],
        );
        assert!(err.contains("peers"), "{peers}: {err}");
        assert!(!data.exists());
    }
    // Peers that do not name this master.
    let err = refused(
        &[
            "master",
            "--id",
            "4",
            "--peers",
            "1=127.0.0.1:1,2=127.0.0.1:2",
            "--http",
            &http,
            "--data-dir",
            &s(&data),
        ],
        &[&data],
    );
    assert!(err.contains("peers") && err.contains('4'), "{err}");
}

#[test]
fn up_with_another_master_count() {
    let dir = tempfile::tempdir().unwrap();
    let ip = loopback_ip();
    let data = dir.path().join("cluster");
    let http = format!("{ip}:0");
    let three = [
        "up",
        "--preset",
        "ci",
        "--masters",
        "3",
        "--http",
        &http,
        "--data-dir",
        &s(&data),
    ];
    let args: Vec<String> = three.iter().map(|a| a.to_string()).collect();
    let mut up = Proc::spawn(
        "meso up --masters 3",
        &args,
        &dir.path().join("up.log"),
        "MARATHON_URL",
    );
    assert!(up.terminate(Duration::from_secs(15)).success());
    let err = refused(
        &[
            "up",
            "--preset",
            "ci",
            "--http",
            &http,
            "--data-dir",
            &s(&data),
        ],
        &[&data],
    );
    assert!(
        err.contains("holds a cluster of 3 masters") && err.contains("--masters 3"),
        "{err}"
    );
}
