//! The fetcher: puts a task's URIs into its sandbox before launch, as the Mesos
//! fetcher does.
//!
//! ```text
//!  for each FetchUri, in order:
//!    name ── output_file, or the URI's last path segment ── must stay in the sandbox
//!    get  ── http://        ─▶ reqwest, streamed chunk by chunk to <sandbox>/<name>
//!            file:///p, /p  ─▶ copied
//!            https://       ─▶ refused at once: this build has no trust roots
//!                              (its TLS serves health checks, which verify nothing)
//!    then ── executable     ─▶ chmod 0755, never extracted
//!            extract (default) and an archive name:
//!              .tar .tar.gz .tgz .zip ─▶ unpacked into the sandbox, archive kept
//!              .gz                    ─▶ decompressed beside it, without the .gz
//! ```
//!
//! The first failure stops the fetch with one line naming the URI and why
//! (`fetch http://x/y.tgz: 404 Not Found`): the task fails to launch rather than
//! start without its files.
//!
//! Archive entries that would land outside the sandbox (`..`, absolute names,
//! through a symlink unpacked earlier) are refused, never skipped quietly: a
//! half-unpacked archive is worse than a clear error.

use std::error::Error as _;
use std::fs::File;
use std::io::BufReader;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use reqwest::Url;
use tokio::io::AsyncWriteExt;

use crate::model::FetchUri;

/// Puts every URI into the sandbox; the error names the URI and why.
pub async fn fetch(uris: &[FetchUri], sandbox: &Path) -> Result<(), String> {
    if uris.is_empty() {
        return Ok(());
    }
    tokio::fs::create_dir_all(sandbox).await.map_err(|e| {
        format!(
            "fetch: cannot create the sandbox {}: {e}",
            sandbox.display()
        )
    })?;
    // Compared against canonical paths below, so spelled canonically too.
    let sandbox = tokio::fs::canonicalize(sandbox)
        .await
        .map_err(|e| format!("fetch: cannot open the sandbox {}: {e}", sandbox.display()))?;
    for uri in uris {
        fetch_one(uri, &sandbox)
            .await
            .map_err(|why| format!("fetch {}: {why}", uri.value))?;
    }
    Ok(())
}

/// Where a URI's bytes come from.
enum Source {
    Http(Url),
    Local(PathBuf),
}

async fn fetch_one(uri: &FetchUri, sandbox: &Path) -> Result<(), String> {
    let (source, segment) = source(uri.value.trim())?;
    let name = match &uri.output_file {
        Some(name) => name.clone(),
        None => segment.ok_or("the URI names no file; give output_file")?,
    };
    let dest = destination(sandbox, &name).await?;
    match &source {
        Source::Http(url) => download(url, &dest).await?,
        Source::Local(path) => copy(path, &dest).await?,
    }
    if uri.executable {
        let executable = std::fs::Permissions::from_mode(0o755);
        return tokio::fs::set_permissions(&dest, executable)
            .await
            .map_err(|e| format!("cannot make {} executable: {e}", dest.display()));
    }
    if uri.extract
        && let Some(kind) = archive_kind(&name)?
    {
        let (archive, sandbox) = (dest.clone(), sandbox.to_path_buf());
        tokio::task::spawn_blocking(move || extract(kind, &archive, &sandbox))
            .await
            .map_err(|e| format!("extraction stopped: {e}"))??;
    }
    Ok(())
}

/// The source of a URI and its last path segment (the default file name).
fn source(value: &str) -> Result<(Source, Option<String>), String> {
    if value.starts_with('/') {
        let path = PathBuf::from(value);
        let name = file_name(&path);
        return Ok((Source::Local(path), name));
    }
    let url = Url::parse(value).map_err(|e| format!("not an absolute path or a URL: {e}"))?;
    match url.scheme() {
        "http" => {
            let name = url
                .path_segments()
                .and_then(|mut s| s.next_back())
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            Ok((Source::Http(url), name))
        }
        "https" => Err(
            "https is not supported: this build's TLS has no trust roots to \
                        verify a server with; serve the file over http or give a local path"
                .into(),
        ),
        "file" => {
            let path = url
                .to_file_path()
                .map_err(|()| "a file URI names a local path: file:///path")?;
            let name = file_name(&path);
            Ok((Source::Local(path), name))
        }
        other => Err(format!(
            "the scheme '{other}' is not supported (http, file or an absolute path)"
        )),
    }
}

fn file_name(path: &Path) -> Option<String> {
    path.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// `<sandbox>/<name>`, refusing names that leave the sandbox; parent
/// directories of `dir/file` names are made.
async fn destination(sandbox: &Path, name: &str) -> Result<PathBuf, String> {
    let rel = inside(Path::new(name))
        .map_err(|()| format!("the output name '{name}' would leave the sandbox"))?;
    let dest = sandbox.join(rel);
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        // A directory unpacked by an earlier URI may be a symlink out.
        let real = tokio::fs::canonicalize(parent)
            .await
            .map_err(|e| format!("cannot open {}: {e}", parent.display()))?;
        if !real.starts_with(sandbox) {
            return Err(format!("the output name '{name}' would leave the sandbox"));
        }
    }
    // Writing through a symlink an earlier archive left under this name
    // could land anywhere: the new file replaces the link instead.
    if let Ok(meta) = tokio::fs::symlink_metadata(&dest).await
        && meta.file_type().is_symlink()
    {
        tokio::fs::remove_file(&dest)
            .await
            .map_err(|e| format!("cannot replace {}: {e}", dest.display()))?;
    }
    Ok(dest)
}

/// A relative path made only of plain names (`.` dropped); Err for `..`,
/// absolute paths and empty names.
fn inside(path: &Path) -> Result<PathBuf, ()> {
    let mut rel = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => rel.push(p),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return Err(()),
        }
    }
    if rel.as_os_str().is_empty() {
        Err(())
    } else {
        Ok(rel)
    }
}

fn only_dots(path: &Path) -> bool {
    path.components().all(|c| c == Component::CurDir)
}

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        // No overall timeout: artifacts can be large. A server that stops
        // sending for a minute fails the fetch instead of hanging the launch.
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .expect("a plain HTTP client builds")
    })
}

/// Streams the body to `dest`; non-2xx is an error naming the status.
async fn download(url: &Url, dest: &Path) -> Result<(), String> {
    let mut answer = http()
        .get(url.clone())
        .send()
        .await
        .map_err(|e| describe(&e))?;
    if !answer.status().is_success() {
        return Err(answer.status().to_string());
    }
    let mut file = tokio::fs::File::create(dest)
        .await
        .map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let written = async {
        while let Some(chunk) = answer.chunk().await.map_err(|e| describe(&e))? {
            file.write_all(&chunk)
                .await
                .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        }
        file.flush()
            .await
            .map_err(|e| format!("cannot write {}: {e}", dest.display()))
    }
    .await;
    if written.is_err() {
        // A truncated artifact must not look like a fetched one.
        let _ = tokio::fs::remove_file(dest).await;
    }
    written
}

/// reqwest's own message is "error sending request for url (...)"; the cause
/// (connection refused, timed out) is in its sources.
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else {
        "download failed".to_string()
    };
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

async fn copy(src: &Path, dest: &Path) -> Result<(), String> {
    let meta = tokio::fs::metadata(src).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("no such file {}", src.display()),
        _ => format!("cannot read {}: {e}", src.display()),
    })?;
    if meta.is_dir() {
        return Err(format!("{} is a directory", src.display()));
    }
    tokio::fs::copy(src, dest)
        .await
        .map(drop)
        .map_err(|e| format!("cannot copy {} to {}: {e}", src.display(), dest.display()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Archive {
    Tar,
    TarGz,
    Zip,
    Gz,
}

/// The archive a file name announces, if any. Formats Mesos extracts that
/// this build cannot (bzip2, xz) are an error rather than a silently
/// unextracted file the task would trip over.
fn archive_kind(name: &str) -> Result<Option<Archive>, String> {
    let name = name.to_ascii_lowercase();
    let ends = |s: &[&str]| s.iter().any(|e| name.ends_with(e));
    if ends(&[".tar.gz", ".tgz"]) {
        Ok(Some(Archive::TarGz))
    } else if ends(&[".tar"]) {
        Ok(Some(Archive::Tar))
    } else if ends(&[".zip"]) {
        Ok(Some(Archive::Zip))
    } else if ends(&[".gz"]) {
        Ok(Some(Archive::Gz))
    } else if ends(&[".bz2", ".tbz2", ".xz", ".txz"]) {
        Err("bzip2 and xz archives cannot be extracted by this build; \
             set extract: false to fetch the file as it is"
            .into())
    } else {
        Ok(None)
    }
}

fn extract(kind: Archive, archive: &Path, sandbox: &Path) -> Result<(), String> {
    let file =
        File::open(archive).map_err(|e| format!("cannot open {}: {e}", archive.display()))?;
    let file = BufReader::new(file);
    match kind {
        Archive::Tar => untar(file, sandbox),
        Archive::TarGz => untar(flate2::bufread::MultiGzDecoder::new(file), sandbox),
        Archive::Zip => unzip(archive, sandbox),
        Archive::Gz => gunzip(file, archive),
    }
}

fn untar(reader: impl std::io::Read, sandbox: &Path) -> Result<(), String> {
    let mut tar = tar::Archive::new(reader);
    let entries = tar
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("corrupt tar archive: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("corrupt tar archive: {e}"))?
            .into_owned();
        if only_dots(&path) {
            continue; // the "./" entry of `tar -C dir .`
        }
        let escapes = || format!("the entry '{}' would leave the sandbox", path.display());
        // tar itself would strip a leading '/' and skip '..' entries quietly.
        inside(&path).map_err(|()| escapes())?;
        // Err here covers entries that reach out through a symlink unpacked earlier.
        let unpacked = entry
            .unpack_in(sandbox)
            .map_err(|e| format!("cannot unpack '{}': {e}", path.display()))?;
        if !unpacked {
            return Err(escapes());
        }
    }
    Ok(())
}

fn unzip(archive: &Path, sandbox: &Path) -> Result<(), String> {
    let file =
        File::open(archive).map_err(|e| format!("cannot open {}: {e}", archive.display()))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| format!("not a zip archive: {e}"))?;
    // Every name is checked before anything is written.
    for name in zip.file_names() {
        let name = name.map_err(|e| format!("corrupt zip archive: {e}"))?;
        let path = Path::new(name.as_ref());
        if !only_dots(path) && inside(path).is_err() {
            return Err(format!("the entry '{name}' would leave the sandbox"));
        }
    }
    zip.extract(sandbox)
        .map_err(|e| format!("cannot extract the zip archive: {e}"))
}

/// `x.gz` becomes `x` beside it, as Mesos's `gzip -dc`.
fn gunzip(reader: impl std::io::BufRead, archive: &Path) -> Result<(), String> {
    let out = archive.with_extension("");
    let mut file =
        File::create(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut gz = flate2::bufread::MultiGzDecoder::new(reader);
    std::io::copy(&mut gz, &mut file)
        .map(drop)
        .map_err(|e| format!("cannot decompress into {}: {e}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_last_segment() {
        let name = |v: &str| source(v).map(|(_, n)| n);
        assert_eq!(
            name("http://h:1/a/b/app.tgz?x=1"),
            Ok(Some("app.tgz".into()))
        );
        assert_eq!(name("http://h:1/"), Ok(None));
        assert_eq!(name("file:///opt/x/tool"), Ok(Some("tool".into())));
        assert_eq!(name("/opt/x/tool"), Ok(Some("tool".into())));
        assert!(name("https://h/x").unwrap_err().contains("TLS"));
        assert!(name("ftp://h/x").unwrap_err().contains("'ftp'"));
        assert!(name("relative/path").is_err());
    }

    #[test]
    fn only_plain_relative_names_stay_inside() {
        assert_eq!(inside(Path::new("a/./b")), Ok(PathBuf::from("a/b")));
        for bad in ["", ".", "../x", "a/../../x", "/etc/passwd", "a/.."] {
            assert!(inside(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn archive_kinds_follow_the_name() {
        assert_eq!(archive_kind("A.TGZ"), Ok(Some(Archive::TarGz)));
        assert_eq!(archive_kind("a.tar.gz"), Ok(Some(Archive::TarGz)));
        assert_eq!(archive_kind("a.tar"), Ok(Some(Archive::Tar)));
        assert_eq!(archive_kind("a.zip"), Ok(Some(Archive::Zip)));
        assert_eq!(archive_kind("a.log.gz"), Ok(Some(Archive::Gz)));
        assert_eq!(archive_kind("a.jar"), Ok(None));
        assert!(archive_kind("a.tar.bz2").is_err());
    }
}
