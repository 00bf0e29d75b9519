//! The sandbox files API, the agent's half: `/files/read`, `/files/browse` and
//! `/files/download` in Mesos's shapes, answered from this agent's sandboxes
//! (`<work_dir>/sandboxes/<task_id>/`) and from nowhere else.
//!
//! ```text
//!  ?path= ─▶ Target::parse ─▶ /tasks/<id>[/rel] ─▶ <root>/<id>/<rel>, confined to <root>/<id>
//!                           ─▶ /abs/path        ─▶ itself, confined to <root>
//!         ─▶ canonicalize (resolves `..` and every symlink) ─▶ still inside? ─no─▶ 404
//!         ─▶ read: {"data","offset"}   browse: [{path,nlink,size,mtime,mode,uid,gid}]
//!            download: the bytes, streamed
//! ```
//!
//! A path outside the sandboxes answers 404 exactly like a missing one, so the
//! API tells nothing about the rest of the disk. The check is on the canonical
//! path, then that path is opened: a task swapping a directory for a symlink
//! in between could race it, but a task can read whatever the agent can
//! anyway; the check keeps out HTTP clients, who cannot make links.
//!
//! As in Mesos, `read` without `offset` is the size probe (`offset=-1`), and
//! `length` defaults to "to the end"; one call returns at most [`READ_CAP`].
//! The composition with the master's proxy is `api::files_router`.

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::AsyncReadExt;

use crate::api::error::ApiError;

/// The most one `/files/read` returns; clients read on from the new offset.
pub const READ_CAP: u64 = 1024 * 1024;

/// The agent's files API alone (an agent-only node composes it the same way).
pub fn router(sandboxes: PathBuf) -> Router {
    crate::api::files_router(None, Some(sandboxes))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    Browse,
    Download,
}

impl Op {
    /// Each route with its Mesos `.json` alias (removed in Mesos 1.8, still
    /// spoken by older tools).
    pub const ROUTES: [(&str, Op); 6] = [
        ("/files/read", Op::Read),
        ("/files/read.json", Op::Read),
        ("/files/browse", Op::Browse),
        ("/files/browse.json", Op::Browse),
        ("/files/download", Op::Download),
        ("/files/download.json", Op::Download),
    ];
}

/// The query as sent; numbers are parsed by the operation that uses them, so
/// a bad one is a 400 naming it.
#[derive(Debug, Default, Deserialize)]
pub struct FilesQuery {
    pub path: Option<String>,
    pub offset: Option<String>,
    pub length: Option<String>,
}

impl FilesQuery {
    pub fn path(&self) -> Result<&str, ApiError> {
        match self.path.as_deref() {
            Some(p) if !p.is_empty() => Ok(p),
            _ => Err(ApiError::bad_request("path: missing; give ?path=")),
        }
    }
}

/// What a `path` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// `/tasks/<id>[/rel]`: `rel` has no leading '/' and may be empty.
    Task {
        id: &'a str,
        rel: &'a str,
    },
    Absolute(&'a Path),
}

impl<'a> Target<'a> {
    /// None for relative paths and for `/tasks/` without a usable task id.
    pub fn parse(path: &'a str) -> Option<Self> {
        if let Some(rest) = path.strip_prefix("/tasks/") {
            let (id, rel) = rest.split_once('/').unwrap_or((rest, ""));
            if id.is_empty() || id == "." || id == ".." {
                return None;
            }
            return Some(Self::Task {
                id,
                rel: rel.trim_start_matches('/'),
            });
        }
        if path == "/tasks" {
            return None;
        }
        path.starts_with('/')
            .then(|| Self::Absolute(Path::new(path)))
    }
}

/// Where a target is on this agent.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// The canonical path, inside the sandboxes.
    Here(PathBuf),
    /// A task this agent holds no sandbox for: perhaps another agent does.
    NotHere,
    /// Missing, or outside the sandboxes: the same answer for both.
    Missing,
}

/// Resolves a target against the sandboxes root (blocking: it touches disk).
pub fn resolve(root: &Path, target: Target) -> Found {
    let confined = |candidate: &Path, within: &Path| match fs::canonicalize(candidate) {
        Ok(real) if real.starts_with(within) => Found::Here(real),
        _ => Found::Missing,
    };
    let Ok(root) = fs::canonicalize(root) else {
        return match target {
            Target::Task { .. } => Found::NotHere,
            Target::Absolute(_) => Found::Missing,
        };
    };
    match target {
        Target::Task { id, rel } => {
            let sandbox = root.join(id);
            if fs::symlink_metadata(&sandbox).is_err() {
                return Found::NotHere;
            }
            let Found::Here(sandbox) = confined(&sandbox, &root) else {
                return Found::Missing;
            };
            confined(&sandbox.join(rel), &sandbox)
        }
        Target::Absolute(path) => confined(path, &root),
    }
}

/// This agent's answer, or None when the path names a task whose sandbox is
/// not here (the caller may ask the master to find it).
pub async fn answer(root: &Path, op: Op, query: &FilesQuery) -> Option<Response> {
    let path = match query.path() {
        Ok(p) => p.to_string(),
        Err(e) => return Some(e.into_response()),
    };
    let found = {
        let (root, path) = (root.to_path_buf(), path.clone());
        tokio::task::spawn_blocking(move || match Target::parse(&path) {
            Some(target) => resolve(&root, target),
            None => Found::Missing,
        })
        .await
        .unwrap_or(Found::Missing)
    };
    let real = match found {
        Found::Here(real) => real,
        Found::NotHere => return None,
        Found::Missing => return Some(not_found(&path).into_response()),
    };
    let answer = match op {
        Op::Read => match (number(query, "offset"), number(query, "length")) {
            (Ok(offset), Ok(length)) => blocking(move || read(&real, offset, length)).await,
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
        Op::Browse => blocking(move || browse(&real, &path)).await,
        Op::Download => download(&real).await,
    };
    Some(answer.unwrap_or_else(IntoResponse::into_response))
}

fn not_found(path: &str) -> ApiError {
    ApiError::not_found(format!("path: no such file or directory '{path}'"))
}

async fn blocking<T: IntoResponse + Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<Response, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(answer) => answer.map(IntoResponse::into_response),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string(),
        )),
    }
}

/// `offset` or `length`: absent is -1, as in Mesos; below -1 is refused.
fn number(query: &FilesQuery, name: &str) -> Result<i64, ApiError> {
    let value = match name {
        "offset" => &query.offset,
        _ => &query.length,
    };
    let Some(text) = value else { return Ok(-1) };
    match text.trim().parse::<i64>() {
        Ok(n) if n >= -1 => Ok(n),
        Ok(_) => Err(ApiError::bad_request(format!(
            "{name}: '{text}' is negative (only -1 is allowed)"
        ))),
        Err(_) => Err(ApiError::bad_request(format!(
            "{name}: '{text}' is not an integer"
        ))),
    }
}

#[derive(Debug, Serialize)]
struct ReadAnswer {
    data: String,
    offset: u64,
}

fn read(path: &Path, offset: i64, length: i64) -> Result<Json<ReadAnswer>, ApiError> {
    let io = |e: std::io::Error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let mut file = fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(ApiError::bad_request("path: is a directory; browse it"));
    }
    let size = meta.len();
    let Ok(offset) = u64::try_from(offset) else {
        return Ok(Json(ReadAnswer {
            data: String::new(),
            offset: size,
        }));
    };
    let want = match u64::try_from(length) {
        Ok(n) => n,
        Err(_) => size.saturating_sub(offset),
    }
    .min(READ_CAP);
    let mut bytes = Vec::new();
    if want > 0 && offset < size {
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        file.take(want).read_to_end(&mut bytes).map_err(io)?;
    }
    Ok(Json(ReadAnswer {
        data: text(bytes),
        offset,
    }))
}

/// Logs are text; a read that ends inside a multi-byte character leaves it to
/// the next read instead of garbling it. Other invalid bytes become U+FFFD.
fn text(mut bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let cut = e.utf8_error();
            bytes = e.into_bytes();
            if cut.error_len().is_none() && cut.valid_up_to() > 0 {
                bytes.truncate(cut.valid_up_to());
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }
}

/// One entry of `/files/browse`, as Mesos's `model(FileInfo)`.
#[derive(Debug, Serialize)]
struct FileInfo {
    path: String,
    nlink: u64,
    size: u64,
    mtime: i64,
    mode: String,
    uid: String,
    gid: String,
}

/// A directory's entries (sorted by name), or a file's own entry. `shown` is
/// the path as asked, so entries read back the way the client names them.
fn browse(real: &Path, shown: &str) -> Result<Json<Vec<FileInfo>>, ApiError> {
    let io = |e: std::io::Error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let users = names("/etc/passwd");
    let groups = names("/etc/group");
    let info = |path: String, meta: &Metadata| FileInfo {
        path,
        nlink: meta.nlink(),
        size: meta.len(),
        mtime: meta.mtime(),
        mode: mode_string(meta.mode()),
        uid: users
            .get(&meta.uid())
            .cloned()
            .unwrap_or_else(|| meta.uid().to_string()),
        gid: groups
            .get(&meta.gid())
            .cloned()
            .unwrap_or_else(|| meta.gid().to_string()),
    };
    let meta = fs::metadata(real).map_err(io)?;
    if !meta.is_dir() {
        return Ok(Json(vec![info(shown.to_string(), &meta)]));
    }
    let base = shown.trim_end_matches('/');
    let mut entries = Vec::new();
    for entry in fs::read_dir(real).map_err(io)? {
        let entry = entry.map_err(io)?;
        // A symlink is listed as itself, never as what it points to.
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue; // removed while listing
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        entries.push(info(format!("{base}/{name}"), &meta));
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Json(entries))
}

/// `ls -l`'s mode column: `drwxr-xr-x`, `-rw-r--r--`, `lrwxrwxrwx`.
pub fn mode_string(mode: u32) -> String {
    let kind = match mode & 0o170000 {
        0o040000 => 'd',
        0o120000 => 'l',
        0o010000 => 'p',
        0o140000 => 's',
        0o020000 => 'c',
        0o060000 => 'b',
        _ => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(kind);
    for (shift, special, mark) in [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(match (bits & 1 != 0, mode & special != 0) {
            (true, true) => mark,
            (false, true) => mark.to_ascii_uppercase(),
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// Id → name from `/etc/passwd` or `/etc/group` (Mesos shows names); ids
/// not listed there show as numbers.
fn names(file: &str) -> HashMap<u32, String> {
    let text = fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let id = fields.nth(1)?.parse().ok()?;
            Some((id, name.to_string()))
        })
        .collect()
}

/// The file's bytes as of the request, streamed in 64 KiB chunks.
async fn download(real: &Path) -> Result<Response, ApiError> {
    let io = |e: std::io::Error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let file = tokio::fs::File::open(real).await.map_err(io)?;
    let meta = file.metadata().await.map_err(io)?;
    if meta.is_dir() {
        return Err(ApiError::bad_request("path: is a directory; browse it"));
    }
    // A log still being written grows while it streams: send the length announced.
    let file = file.take(meta.len());
    let chunks = futures::stream::try_unfold(file, |mut file| async move {
        let mut buf = vec![0; 64 * 1024];
        let n = file.read(&mut buf).await?;
        buf.truncate(n);
        Ok::<_, std::io::Error>((n > 0).then(|| (bytes::Bytes::from(buf), file)))
    });
    let response = Response::builder()
        .header(header::CONTENT_TYPE, content_type(real))
        .header(header::CONTENT_LENGTH, meta.len())
        .body(Body::from_stream(chunks));
    response.map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// A guess from the extension, as Mesos makes one; sandbox logs (`stdout`,
/// `stderr`) have none and download as bytes.
fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" | "out" | "err" => "text/plain; charset=utf-8",
        "json" => "application/json",
        "html" | "htm" => "text/html",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// The 404 a node answers when no role of it can find the task's sandbox.
pub fn no_sandbox(path: &str) -> Response {
    let message = format!("path: no sandbox on this node for '{path}'");
    (StatusCode::NOT_FOUND, Json(json!({ "message": message }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_paths_name_a_task_and_a_path_in_it() {
        let task = |id, rel| Some(Target::Task { id, rel });
        assert_eq!(Target::parse("/tasks/web.1"), task("web.1", ""));
        assert_eq!(Target::parse("/tasks/web.1/"), task("web.1", ""));
        assert_eq!(
            Target::parse("/tasks/web.1/logs/x"),
            task("web.1", "logs/x")
        );
        assert_eq!(Target::parse("/tasks/w//x"), task("w", "x"));
        assert_eq!(Target::parse("/tasks/../etc"), None);
        assert_eq!(Target::parse("/tasks/"), None);
        assert_eq!(Target::parse("/tasks"), None);
        assert_eq!(Target::parse("tasks/x"), None);
        assert_eq!(
            Target::parse("/var/x"),
            Some(Target::Absolute(Path::new("/var/x")))
        );
    }

    #[test]
    fn modes_read_like_ls() {
        assert_eq!(mode_string(0o100644), "-rw-r--r--");
        assert_eq!(mode_string(0o040755), "drwxr-xr-x");
        assert_eq!(mode_string(0o120777), "lrwxrwxrwx");
        assert_eq!(mode_string(0o104755), "-rwsr-xr-x");
        assert_eq!(mode_string(0o041777), "drwxrwxrwt");
        assert_eq!(mode_string(0o100600 | 0o2000), "-rw---S---");
    }

    #[test]
    fn a_read_never_ends_inside_a_character() {
        let e_acute = "é".as_bytes();
        assert_eq!(text(vec![b'a', e_acute[0]]), "a");
        assert_eq!(text(vec![b'a', 0xff, b'b']), "a\u{fffd}b");
    }
}
