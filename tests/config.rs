//! Configuration precedence as a user meets it: flag over `MESO_*` environment
//! over `--config` file over `--preset`. Each layer names a data dir that is a
//! plain file, so the one that wins is the path the refusal names.

use std::path::Path;
use std::process::Command;

fn refusal(args: &[&str], env: &[(&str, &Path)]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_meso"));
    cmd.args(args)
        .args(["--http", "127.0.0.1:0", "--raft", "127.0.0.1:0"])
        .env_remove("MESOS_MASTER");
    for key in [
        "MESO_DATA_DIR",
        "MESO_CONFIG",
        "MESO_PRESET",
        "MESO_HTTP",
        "MESO_RAFT",
    ] {
        cmd.env_remove(key);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run meso");
    assert_ne!(
        out.status.code(),
        Some(0),
        "meso should refuse a file as data dir"
    );
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    err
}

#[test]
fn flag_beats_env_beats_config_beats_preset() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, b"not a directory").unwrap();
        p
    };
    let (from_flag, from_env, from_config, from_preset) =
        (file("flag"), file("env"), file("config"), file("preset"));
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, format!("data_dir: {}\n", from_config.display())).unwrap();
    let preset = dir.path().join("preset.yaml");
    std::fs::write(&preset, format!("data_dir: {}\n", from_preset.display())).unwrap();
    let (config, preset) = (config.to_str().unwrap(), preset.to_str().unwrap());

    let base = ["master", "--preset", preset];
    let err = refusal(&base, &[]);
    assert!(err.contains(from_preset.to_str().unwrap()), "{err}");

    let with_config = ["master", "--preset", preset, "--config", config];
    let err = refusal(&with_config, &[]);
    assert!(err.contains(from_config.to_str().unwrap()), "{err}");

    let err = refusal(&with_config, &[("MESO_DATA_DIR", &from_env)]);
    assert!(err.contains(from_env.to_str().unwrap()), "{err}");

    let flag = from_flag.to_str().unwrap();
    let with_flag = [
        "master",
        "--preset",
        preset,
        "--config",
        config,
        "--data-dir",
        flag,
    ];
    let err = refusal(&with_flag, &[("MESO_DATA_DIR", &from_env)]);
    assert!(err.contains(flag), "{err}");
}

#[test]
fn the_config_file_itself_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("meso.yaml");
    std::fs::write(&config, "raft:\n  tick_ms: 10\n  colour: blue\n").unwrap();
    let err = refusal(&["master"], &[("MESO_CONFIG", &config)]);
    assert!(
        err.contains("colour") && err.contains(config.to_str().unwrap()),
        "{err}"
    );
}
