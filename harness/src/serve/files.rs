//! Sending a store file: the content type a browser needs to show it, and
//! a body streamed from disk so a node's long log never sits in memory.

use std::path::Path;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_util::io::ReaderStream;

/// How much of a file one chunk of the response carries.
const CHUNK_BYTES: usize = 64 * 1024;

/// The content type of a store file, by its extension. Everything the
/// store writes as text (`.jsonl`, `.toml`, `.log`, ...) is plain UTF-8
/// text so browsers show it rather than download it; what is not known
/// (the nodes' WAL and snapshots) is bytes.
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("css") => "text/css; charset=utf-8",
        Some("jsonl" | "toml" | "log" | "txt" | "edn" | "csv" | "md" | "xml") => {
            "text/plain; charset=utf-8"
        }
        _ => "application/octet-stream",
    }
}

/// A response streaming the file at `path` (already checked to be inside
/// the store), or 404 if it is gone or not a regular file.
pub async fn send(path: &Path) -> Response {
    let file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) => {
            return (
                StatusCode::NOT_FOUND,
                format!("cannot open the file: {e}\n"),
            )
                .into_response();
        }
    };
    let meta = match file.metadata().await {
        Ok(meta) if meta.is_file() => meta,
        Ok(_) => return (StatusCode::NOT_FOUND, "not a file\n").into_response(),
        Err(e) => {
            return (
                StatusCode::NOT_FOUND,
                format!("cannot open the file: {e}\n"),
            )
                .into_response();
        }
    };
    let body = Body::from_stream(ReaderStream::with_capacity(file, CHUNK_BYTES));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.len()));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A run's files change while it runs and when it is re-checked.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_files_get_types_browsers_show() {
        let ty = |name: &str| content_type(Path::new(name));
        assert_eq!(ty("report.html"), "text/html; charset=utf-8");
        assert_eq!(ty("results.json"), "application/json");
        assert_eq!(ty("history.jsonl"), "text/plain; charset=utf-8");
        assert_eq!(ty("config.toml"), "text/plain; charset=utf-8");
        assert_eq!(ty("nodes/1/kvd.log"), "text/plain; charset=utf-8");
        assert_eq!(ty("latency.svg"), "image/svg+xml");
        assert_eq!(ty("REPORT.HTML"), "text/html; charset=utf-8");
        assert_eq!(ty("nodes/1/data/wal/00000001"), "application/octet-stream");
    }
}
