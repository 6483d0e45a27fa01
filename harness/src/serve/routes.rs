//! The URLs the server answers, and what each does:
//!
//! - `/`: the index of the store; `?verdict=<status>&test=<part of a name>`
//!   filters the test runs.
//! - `/run/<test>/<run>/`: one run's verdict, facts, files and commands.
//! - `/store/<path>`: a file of the store, as it is on disk, so a report's
//!   relative links work; a run's folder redirects to its page.
//!
//! Reading the store is blocking file work, so it runs on tokio's blocking
//! pool; files are streamed. Every request is logged at debug level.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use super::files;
use super::pages::{Filter, Pages, RunView, run_url, store_url};
use super::paths::{PathRejection, StoreRoot};
use super::scan::{BENCH_DIR, BENCH_HTML, RunEntry, Status, StoreIndex, run_files};

/// What every request needs: the store and the page templates.
pub struct AppState {
    /// The store being browsed.
    pub root: StoreRoot,
    /// The parsed templates.
    pub pages: Pages,
}

/// The server's routes over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/run/{test}/{dir}", get(run_page))
        .route("/run/{test}/{dir}/", get(run_page))
        .route("/store/{*path}", get(store_file))
        .fallback(|| async { Failure::NotFound("no such page".to_string()) })
        .with_state(state)
        .layer(middleware::from_fn(log_request))
}

/// Why a request got no page, as an HTTP status and a line of text.
#[derive(Debug)]
enum Failure {
    BadRequest(String),
    Forbidden(String),
    NotFound(String),
    Internal(String),
}

impl From<PathRejection> for Failure {
    fn from(rejection: PathRejection) -> Failure {
        let text = rejection.to_string();
        match rejection {
            PathRejection::NotPlain(_) => Failure::BadRequest(text),
            PathRejection::Outside(_) => Failure::Forbidden(text),
            PathRejection::NotFound(_) => Failure::NotFound(text),
            PathRejection::Unreadable { .. } => Failure::Internal(text),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, text) = match self {
            Failure::BadRequest(t) => (StatusCode::BAD_REQUEST, t),
            Failure::Forbidden(t) => (StatusCode::FORBIDDEN, t),
            Failure::NotFound(t) => (StatusCode::NOT_FOUND, t),
            Failure::Internal(t) => {
                tracing::error!(error = %t, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, t)
            }
        };
        (status, format!("{text}\n")).into_response()
    }
}

/// Runs blocking file work off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Failure::Internal(format!("the request's work failed: {e}")))?
}

/// The query string of the index.
#[derive(Debug, Deserialize)]
struct IndexQuery {
    verdict: Option<String>,
    test: Option<String>,
}

impl IndexQuery {
    fn filter(self) -> Result<Filter, Failure> {
        let status = match self.verdict.as_deref() {
            None | Some("") => None,
            Some(word) => Some(Status::from_name(word).ok_or_else(|| {
                Failure::BadRequest(format!(
                    "unknown verdict {word:?}: use valid, invalid, unknown or incomplete"
                ))
            })?),
        };
        Ok(Filter {
            status,
            test: self.test.filter(|t| !t.is_empty()),
        })
    }
}

async fn index(
    State(state): State<Arc<AppState>>,
    Query(query): Query<IndexQuery>,
) -> Result<Html<String>, Failure> {
    let filter = query.filter()?;
    blocking(move || {
        let root = state.root.path();
        let index = StoreIndex::scan(root);
        state
            .pages
            .index(root, &index, &filter)
            .map(Html)
            .map_err(|e| Failure::Internal(format!("{e:#}")))
    })
    .await
}

async fn run_page(
    State(state): State<Arc<AppState>>,
    Path((test, dir)): Path<(String, String)>,
) -> Result<Response, Failure> {
    blocking(move || {
        let root = &state.root;
        let canonical = root.resolve(&format!("{test}/{dir}"))?;
        let names = root.names_under(&canonical).unwrap_or_default();
        let [real_test, real_dir] = names.as_slice() else {
            return Err(Failure::NotFound(format!("{test}/{dir} is not a run")));
        };
        if !canonical.is_dir() || real_test == BENCH_DIR {
            return Err(Failure::NotFound(format!("{test}/{dir} is not a test run")));
        }
        // `latest` and other links: send the browser to the run's real name.
        if (real_test, real_dir) != (&test, &dir) {
            return Ok(Redirect::to(&run_url(real_test, real_dir)).into_response());
        }
        let entry = RunEntry::read(root.path(), &test, &dir);
        let files = run_files(&canonical);
        let counterexample = counterexample(root, &entry);
        let view = RunView {
            entry: &entry,
            files: &files,
            counterexample: counterexample.as_deref(),
            dir: &canonical,
        };
        let page = state
            .pages
            .run(&view)
            .map_err(|e| Failure::Internal(format!("{e:#}")))?;
        Ok(Html(page).into_response())
    })
    .await
}

/// The run's counterexample page (relative to the run) when `results.json`
/// names one that is a file inside the run's folder.
fn counterexample(root: &StoreRoot, entry: &RunEntry) -> Option<String> {
    let link = entry.results.as_ref().ok()?.timeline.clone()?;
    let path = root
        .resolve(&format!("{}/{}/{link}", entry.test, entry.dir))
        .ok()?;
    let names = root.names_under(&path)?;
    let inside_run = names.len() > 2 && names[0] == entry.test && names[1] == entry.dir;
    (inside_run && path.is_file()).then_some(link)
}

async fn store_file(
    State(state): State<Arc<AppState>>,
    Path(path): Path<String>,
) -> Result<Response, Failure> {
    let (canonical, redirect) = blocking(move || {
        let canonical = state.root.resolve(&path)?;
        if !canonical.is_dir() {
            return Ok((canonical, None));
        }
        let names = state.root.names_under(&canonical).unwrap_or_default();
        let redirect = match names.as_slice() {
            [bench, dir] if bench == BENCH_DIR && canonical.join(BENCH_HTML).is_file() => {
                store_url(&[BENCH_DIR, dir, BENCH_HTML])
            }
            [test, dir] if test != BENCH_DIR => run_url(test, dir),
            _ => return Err(Failure::NotFound(format!("{path} is a folder, not a file"))),
        };
        Ok((canonical, Some(redirect)))
    })
    .await?;
    match redirect {
        Some(url) => Ok(Redirect::to(&url).into_response()),
        None => Ok(files::send(&canonical).await),
    }
}

/// Logs each request with its status and time taken.
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::debug!(
        %method,
        %uri,
        status = response.status().as_u16(),
        micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    response
}

#[cfg(test)]
mod tests;
