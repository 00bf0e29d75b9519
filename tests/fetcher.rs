//! The fetcher as a task sees its result: files in the sandbox, archives
//! unpacked beside them, executables executable, and one-line errors naming
//! the URI when something cannot be fetched. A small HTTP server on 127.0.0.1
//! serves the artifacts.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common;

use common::serve_files;
use meso::agent::fetcher::fetch;
use meso::model::FetchUri;

fn uri(value: &str) -> FetchUri {
    FetchUri {
        value: value.to_string(),
        executable: false,
        extract: true,
        output_file: None,
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A .tar.gz of `(name, bytes, mode)`.
fn tar_gz(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes, mode) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(*mode);
        header.set_cksum();
        tar.append_data(&mut header, name, *bytes).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// A .tar.gz whose one entry is named `name` verbatim (the tar crate's
/// builder refuses `..`, which is the point of the test that uses it).
fn tar_gz_raw_name(name: &str, bytes: &[u8]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append(&header, bytes).unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

#[tokio::test]
async fn an_http_file_lands_in_the_sandbox_under_its_name() {
    let base = serve_files(vec![("/a/b/config.json", b"{\"x\":1}".to_vec())]).await;
    let dir = tempfile::tempdir().unwrap();
    let sandbox = dir.path().join("sandbox"); // made by the fetcher
    fetch(&[uri(&format!("{base}/a/b/config.json"))], &sandbox)
        .await
        .unwrap();
    let path = sandbox.join("config.json");
    assert_eq!(std::fs::read(&path).unwrap(), b"{\"x\":1}");
    assert_eq!(mode(&path) & 0o111, 0, "not executable unless asked");
}

#[tokio::test]
async fn a_large_download_arrives_whole() {
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let base = serve_files(vec![("/big.bin", big.clone())]).await;
    let dir = tempfile::tempdir().unwrap();
    fetch(&[uri(&format!("{base}/big.bin"))], dir.path())
        .await
        .unwrap();
    assert!(std::fs::read(dir.path().join("big.bin")).unwrap() == big);
}

#[tokio::test]
async fn output_file_renames_and_may_name_a_subdirectory() {
    let base = serve_files(vec![("/x", b"payload".to_vec())]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut u = uri(&format!("{base}/x"));
    u.output_file = Some("conf/app.conf".into());
    fetch(&[u], dir.path()).await.unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("conf/app.conf")).unwrap(),
        b"payload"
    );
}

#[tokio::test]
async fn a_tar_gz_is_extracted_into_the_sandbox_and_kept() {
    let archive = tar_gz(&[
        ("app/run.sh", b"#!/bin/sh\necho hi\n", 0o755),
        ("app/data/readme.txt", b"hello", 0o644),
    ]);
    let base = serve_files(vec![("/dl/app.tgz", archive.clone())]).await;
    let dir = tempfile::tempdir().unwrap();
    fetch(&[uri(&format!("{base}/dl/app.tgz"))], dir.path())
        .await
        .unwrap();
    let s = dir.path();
    assert_eq!(
        std::fs::read(s.join("app/data/readme.txt")).unwrap(),
        b"hello"
    );
    assert_eq!(mode(&s.join("app/run.sh")), 0o755, "modes survive");
    assert_eq!(std::fs::read(s.join("app.tgz")).unwrap(), archive);
}

#[tokio::test]
async fn extract_false_keeps_the_archive_packed() {
    let archive = tar_gz(&[("inner.txt", b"x", 0o644)]);
    let base = serve_files(vec![("/a.tar.gz", archive)]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut u = uri(&format!("{base}/a.tar.gz"));
    u.extract = false;
    fetch(&[u], dir.path()).await.unwrap();
    assert!(dir.path().join("a.tar.gz").is_file());
    assert!(!dir.path().join("inner.txt").exists());
}

#[tokio::test]
async fn a_zip_is_extracted_into_the_sandbox_and_kept() {
    let archive = zip_of(&[("site/index.html", b"<h1>hi</h1>"), ("top.txt", b"top")]);
    let base = serve_files(vec![("/site.zip", archive)]).await;
    let dir = tempfile::tempdir().unwrap();
    fetch(&[uri(&format!("{base}/site.zip"))], dir.path())
        .await
        .unwrap();
    let s = dir.path();
    assert_eq!(
        std::fs::read(s.join("site/index.html")).unwrap(),
        b"<h1>hi</h1>"
    );
    assert_eq!(std::fs::read(s.join("top.txt")).unwrap(), b"top");
    assert!(s.join("site.zip").is_file());
}

#[tokio::test]
async fn a_gz_file_is_decompressed_beside_itself() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"line one\n").unwrap();
    let base = serve_files(vec![("/words.txt.gz", gz.finish().unwrap())]).await;
    let dir = tempfile::tempdir().unwrap();
    fetch(&[uri(&format!("{base}/words.txt.gz"))], dir.path())
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("words.txt")).unwrap(),
        b"line one\n"
    );
}

#[tokio::test]
async fn executable_sets_0755_and_never_extracts() {
    let archive = tar_gz(&[("inner.txt", b"x", 0o644)]);
    let base = serve_files(vec![
        ("/bin/tool", b"#!/bin/sh\n".to_vec()),
        ("/self-extracting.tgz", archive),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut tool = uri(&format!("{base}/bin/tool"));
    tool.executable = true;
    let mut packed = uri(&format!("{base}/self-extracting.tgz"));
    packed.executable = true;
    fetch(&[tool, packed], dir.path()).await.unwrap();
    assert_eq!(mode(&dir.path().join("tool")), 0o755);
    assert_eq!(mode(&dir.path().join("self-extracting.tgz")), 0o755);
    assert!(!dir.path().join("inner.txt").exists());
}

#[tokio::test]
async fn local_paths_and_file_uris_are_copied() {
    let src = tempfile::tempdir().unwrap();
    let plain = src.path().join("plain.txt");
    std::fs::write(&plain, b"plain").unwrap();
    let archive = src.path().join("bundle.tar.gz");
    std::fs::write(&archive, tar_gz(&[("from-bundle", b"b", 0o644)])).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let uris = [
        uri(&plain.display().to_string()),
        uri(&format!("file://{}", archive.display())),
    ];
    fetch(&uris, dir.path()).await.unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("plain.txt")).unwrap(),
        b"plain"
    );
    assert_eq!(std::fs::read(dir.path().join("from-bundle")).unwrap(), b"b");
    assert!(plain.exists(), "a copy, not a move");
}

#[tokio::test]
async fn a_404_names_the_uri_and_the_status() {
    let base = serve_files(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let value = format!("{base}/y.tgz");
    let err = fetch(&[uri(&value)], dir.path()).await.unwrap_err();
    assert_eq!(err, format!("fetch {value}: 404 Not Found"));
    assert!(
        !dir.path().join("y.tgz").exists(),
        "no file for a failed fetch"
    );
}

#[tokio::test]
async fn the_first_failure_stops_the_fetch() {
    let base = serve_files(vec![("/later", b"x".to_vec())]).await;
    let dir = tempfile::tempdir().unwrap();
    let uris = [
        uri(&format!("{base}/missing")),
        uri(&format!("{base}/later")),
    ];
    let err = fetch(&uris, dir.path()).await.unwrap_err();
    assert!(err.contains("/missing: 404"), "{err}");
    assert!(!dir.path().join("later").exists());
}

#[tokio::test]
async fn a_missing_local_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.bin");
    let value = missing.display().to_string();
    let err = fetch(&[uri(&value)], &dir.path().join("s"))
        .await
        .unwrap_err();
    assert_eq!(err, format!("fetch {value}: no such file {value}"));
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_not_a_hang() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let value = format!("http://127.0.0.1:{port}/x");
    let err = fetch(&[uri(&value)], dir.path()).await.unwrap_err();
    assert!(err.starts_with(&format!("fetch {value}: ")), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
}

#[tokio::test]
async fn https_says_this_build_has_no_tls() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let err = fetch(&[uri("https://example.invalid/app.tgz")], dir.path())
        .await
        .unwrap_err();
    assert!(
        err.starts_with("fetch https://example.invalid/app.tgz: "),
        "{err}"
    );
    assert!(err.contains("TLS"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn output_names_that_leave_the_sandbox_are_refused() {
    let base = serve_files(vec![("/x", b"x".to_vec())]).await;
    let outer = tempfile::tempdir().unwrap();
    let sandbox = outer.path().join("sandbox");
    for name in ["../escaped", "a/../../escaped", "/tmp/escaped-by-meso-test"] {
        let mut u = uri(&format!("{base}/x"));
        u.output_file = Some(name.into());
        let err = fetch(&[u], &sandbox).await.unwrap_err();
        assert!(err.contains("would leave the sandbox"), "{name}: {err}");
    }
    assert!(!outer.path().join("escaped").exists());
    assert!(!Path::new("/tmp/escaped-by-meso-test").exists());
}

#[tokio::test]
async fn archive_entries_that_leave_the_sandbox_are_refused() {
    let base = serve_files(vec![
        ("/evil.tgz", tar_gz_raw_name("../evil-tar", b"x")),
        ("/abs.tgz", tar_gz_raw_name("/evil-abs", b"x")),
        (
            "/evil.zip",
            zip_of(&[("ok.txt", b"ok"), ("../evil-zip", b"x")]),
        ),
    ])
    .await;
    let outer = tempfile::tempdir().unwrap();
    let sandbox = outer.path().join("sandbox");
    for (name, entry) in [
        ("evil.tgz", "../evil-tar"),
        ("abs.tgz", "/evil-abs"),
        ("evil.zip", "../evil-zip"),
    ] {
        let value = format!("{base}/{name}");
        let err = fetch(&[uri(&value)], &sandbox).await.unwrap_err();
        assert_eq!(
            err,
            format!("fetch {value}: the entry '{entry}' would leave the sandbox")
        );
    }
    assert!(!outer.path().join("evil-tar").exists());
    assert!(!outer.path().join("evil-zip").exists());
    assert!(
        !sandbox.join("ok.txt").exists(),
        "a zip is checked before any write"
    );
}

#[tokio::test]
async fn a_symlink_from_one_archive_cannot_carry_the_next_one_out() {
    // The first archive leaves `link -> ..`; the second writes `link/out`.
    let outer = tempfile::tempdir().unwrap();
    let sandbox = outer.path().join("sandbox");
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_cksum();
    tar.append_link(&mut header, "link", "..").unwrap();
    let first = tar.into_inner().unwrap().finish().unwrap();
    let base = serve_files(vec![
        ("/first.tgz", first),
        ("/second.tgz", tar_gz(&[("link/out", b"x", 0o644)])),
        ("/plain", b"x".to_vec()),
    ])
    .await;
    fetch(&[uri(&format!("{base}/first.tgz"))], &sandbox)
        .await
        .unwrap();
    let err = fetch(&[uri(&format!("{base}/second.tgz"))], &sandbox)
        .await
        .unwrap_err();
    assert!(err.contains("link/out"), "{err}");
    let mut through = uri(&format!("{base}/plain"));
    through.output_file = Some("link/out".into());
    let err = fetch(&[through], &sandbox).await.unwrap_err();
    assert!(err.contains("would leave the sandbox"), "{err}");
    assert!(!outer.path().join("out").exists());
}

#[tokio::test]
async fn unsupported_sources_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = fetch(&[uri("ftp://h/x")], dir.path()).await.unwrap_err();
    assert!(
        err.starts_with("fetch ftp://h/x: ") && err.contains("'ftp'"),
        "{err}"
    );
    let err = fetch(&[uri("relative/x")], dir.path()).await.unwrap_err();
    assert!(err.starts_with("fetch relative/x: "), "{err}");
    let base = serve_files(vec![("/", b"x".to_vec())]).await;
    let err = fetch(&[uri(&format!("{base}/"))], dir.path())
        .await
        .unwrap_err();
    assert!(err.contains("output_file"), "{err}");
}

#[tokio::test]
async fn nothing_to_fetch_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = dir.path().join("never-made");
    fetch(&[], &sandbox).await.unwrap();
    assert!(!sandbox.exists());
}
