//! The router driven in-process: status codes, content types and what the
//! pages say, over stores built in a temporary directory.

use std::fs;
use std::os::unix::fs::symlink;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

use super::*;
use crate::serve::testing::{StoreBuilder, results_json};

const VALID: &str = "20261123T100000Z-11";
const INVALID: &str = "20261123T110000Z-22";
const RUNNING: &str = "20261123T120000Z-33";

/// A store with a valid and an invalid run of `alpha`, a run of `beta`
/// still going (config only), one bench run and the `latest` links.
fn sample_store() -> StoreBuilder {
    let store = StoreBuilder::new();
    store.run("alpha", VALID, Some(&results_json("valid", 11)));
    let invalid = store.run("alpha", INVALID, Some(&results_json("invalid", 22)));
    fs::write(invalid.join("history.linearizability.html"), "<p>cx</p>").unwrap();
    fs::write(invalid.join("history.jsonl"), "{\"type\":\"invoke\"}\n").unwrap();
    fs::write(invalid.join("config.toml"), "seed = 22\n").unwrap();
    fs::create_dir_all(invalid.join("nodes/1/data")).unwrap();
    fs::write(invalid.join("nodes/1/kvd.log"), "node one\n").unwrap();
    store.run("beta", RUNNING, None);
    store.config("beta", RUNNING, 33);
    store.link_latest("alpha", INVALID);
    store.bench(
        "20261123T130000Z-baseline",
        Some(r#"{"summary": "3 nodes: 812 ok ops/s, p99 14 ms"}"#),
    );
    store
}

fn app(store: &StoreBuilder) -> Router {
    router(Arc::new(AppState {
        root: StoreRoot::open(store.root()).unwrap(),
        pages: Pages::new().unwrap(),
    }))
}

/// GETs `uri`: the status, the content type and the body as text (or the
/// redirect's target). minijinja escapes `/` as `&#x2f;`, which browsers
/// read back as `/`; so does this, to keep the assertions readable.
async fn get(app: &Router, uri: &str) -> (StatusCode, String, String) {
    let request = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_string());
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let body = location.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&body);
        if content_type.starts_with("text/html") {
            text.replace("&#x2f;", "/")
        } else {
            text.into_owned()
        }
    });
    (status, content_type, body)
}

#[tokio::test]
async fn index_lists_every_run_newest_first_with_its_verdict() {
    let store = sample_store();
    let (status, ty, page) = get(&app(&store), "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ty, "text/html; charset=utf-8");
    let running = page.find(RUNNING).expect("the running run is listed");
    let invalid = page.find(INVALID).expect("the invalid run is listed");
    let valid = page.find(VALID).expect("the valid run is listed");
    assert!(running < invalid && invalid < valid, "newest first");
    assert!(page.contains(r#"<span class="pill invalid">invalid</span>"#));
    assert!(page.contains(r#"<span class="pill valid">valid</span>"#));
    assert!(page.contains(r#"<span class="pill incomplete">incomplete</span>"#));
    assert!(page.contains("no results.json yet"), "the reason is shown");
    assert!(page.contains(r#"<td class="num ok-n">120</td>"#));
    assert!(page.contains("partition, kill"));
    assert!(page.contains("15.0 s"));
    assert!(page.contains(&format!("/store/alpha/{INVALID}/report.html")));
    assert!(page.contains(&format!("/run/beta/{RUNNING}/")));
}

#[tokio::test]
async fn index_lists_bench_runs_apart() {
    let store = sample_store();
    let (_, _, page) = get(&app(&store), "/").await;
    let benches = page.find(r#"id="benches""#).unwrap();
    let summary = page.find("812 ok ops/s").expect("the bench summary");
    assert!(summary > benches);
    assert!(page.contains("/store/bench/20261123T130000Z-baseline/bench.html"));
    assert!(page.contains("2026-11-23T13:00:00Z"));
}

#[tokio::test]
async fn index_filters_by_verdict_and_test_name() {
    let store = sample_store();
    let app = app(&store);
    let (status, _, page) = get(&app, "/?verdict=invalid").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(INVALID));
    assert!(!page.contains(VALID) && !page.contains(RUNNING));
    let (_, _, page) = get(&app, "/?verdict=&test=bet").await;
    assert!(page.contains(RUNNING));
    assert!(!page.contains(VALID) && !page.contains(INVALID));
    let (_, _, page) = get(&app, "/?verdict=valid&test=beta").await;
    assert!(page.contains("No run matches the filter"));
    let (status, _, text) = get(&app, "/?verdict=green").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("unknown verdict"), "{text}");
}

#[tokio::test]
async fn index_escapes_names_from_the_store() {
    let store = StoreBuilder::new();
    store.run("<em>x&\"y", VALID, Some(&results_json("valid", 1)));
    let (status, _, page) = get(&app(&store), "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("<em>"));
    assert!(page.contains("&lt;em&gt;x&amp;&quot;y"), "{page}");
    assert!(page.contains("/run/%3Cem%3Ex%26%22y/"), "{page}");
}

#[tokio::test]
async fn index_shows_runs_made_after_the_server_started() {
    let store = StoreBuilder::new();
    let app = app(&store);
    let (_, _, page) = get(&app, "/").await;
    assert!(page.contains("No runs yet"));
    store.run("late", VALID, Some(&results_json("valid", 1)));
    let (_, _, page) = get(&app, "/").await;
    assert!(page.contains(VALID));
}

#[tokio::test]
async fn run_page_has_the_verdict_files_and_commands() {
    let store = sample_store();
    let (status, ty, page) = get(&app(&store), &format!("/run/alpha/{INVALID}/")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ty, "text/html; charset=utf-8");
    assert!(page.contains(r#"<div class="verdict invalid" id="verdict">"#));
    let base = format!("/store/alpha/{INVALID}");
    for file in [
        "report.html",
        "history.linearizability.html",
        "history.jsonl",
        "config.toml",
        "results.json",
        "nodes/1/kvd.log",
    ] {
        assert!(page.contains(&format!("{base}/{file}")), "links {file}");
    }
    assert!(page.contains("open the counterexample"));
    let run_dir = store
        .root()
        .canonicalize()
        .unwrap()
        .join("alpha")
        .join(INVALID);
    assert!(page.contains(&format!("faultline replay {}", run_dir.display())));
    assert!(page.contains(&format!("faultline check {}", run_dir.display())));
    // Without the trailing slash too.
    let (status, _, _) = get(&app(&store), &format!("/run/alpha/{INVALID}")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn run_page_of_an_unfinished_run_says_why() {
    let store = sample_store();
    let (status, _, page) = get(&app(&store), &format!("/run/beta/{RUNNING}/")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"<div class="verdict incomplete" id="verdict">"#));
    assert!(page.contains("no results.json yet"));
    assert!(
        page.contains("<dd>33</dd>"),
        "the seed comes from config.toml"
    );
    assert!(
        page.contains("<td class=\"num\">missing</td>"),
        "missing files are shown as such"
    );
}

#[tokio::test]
async fn latest_links_redirect_to_the_real_run() {
    let store = sample_store();
    let app = app(&store);
    let run = format!("/run/alpha/{INVALID}/");
    for uri in [
        "/store/latest/",
        "/store/alpha/latest",
        "/run/alpha/latest/",
    ] {
        let (status, _, location) = get(&app, uri).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{uri}");
        assert_eq!(location, run, "{uri}");
    }
    let (status, ty, body) = get(&app, "/store/latest/results.json").await;
    assert_eq!((status, ty.as_str()), (StatusCode::OK, "application/json"));
    assert!(body.contains("\"invalid\""));
}

#[tokio::test]
async fn store_files_are_served_with_their_content_types() {
    let store = sample_store();
    let app = app(&store);
    let base = format!("/store/alpha/{INVALID}");
    for (file, expected_type, expected_body) in [
        ("report.html", "text/html; charset=utf-8", "report"),
        (
            "history.linearizability.html",
            "text/html; charset=utf-8",
            "<p>cx</p>",
        ),
        (
            "history.jsonl",
            "text/plain; charset=utf-8",
            "{\"type\":\"invoke\"}\n",
        ),
        ("config.toml", "text/plain; charset=utf-8", "seed = 22\n"),
        ("nodes/1/kvd.log", "text/plain; charset=utf-8", "node one\n"),
    ] {
        let (status, ty, body) = get(&app, &format!("{base}/{file}")).await;
        assert_eq!(status, StatusCode::OK, "{file}");
        assert_eq!(ty, expected_type, "{file}");
        assert_eq!(body, expected_body, "{file}");
    }
    let (status, _, _) = get(&app, &format!("{base}/nodes/1/data")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "folders are not listed");
}

#[tokio::test]
async fn a_large_log_arrives_whole() {
    let store = sample_store();
    let log: String = (0..200_000).map(|i| format!("line {i}\n")).collect();
    let path = store
        .root()
        .join("alpha")
        .join(INVALID)
        .join("nodes/1/kvd.log");
    fs::write(&path, &log).unwrap();
    let request = Request::builder()
        .uri(format!("/store/alpha/{INVALID}/nodes/1/kvd.log"))
        .body(Body::empty())
        .unwrap();
    let response = app(&store).oneshot(request).await.unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_LENGTH],
        log.len().to_string().as_str()
    );
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    assert_eq!(body.len(), log.len());
    assert!(body == log.as_bytes());
}

#[tokio::test]
async fn nothing_outside_the_store_is_served() {
    let store = sample_store();
    fs::write(store.outside().join("secret.txt"), "secret").unwrap();
    symlink(
        store.outside().join("secret.txt"),
        store.root().join("alpha/leak.txt"),
    )
    .unwrap();
    symlink(store.outside(), store.root().join("up")).unwrap();
    let app = app(&store);
    for (uri, expected) in [
        ("/store/../secret.txt", StatusCode::BAD_REQUEST),
        ("/store/%2e%2e/secret.txt", StatusCode::BAD_REQUEST),
        (
            "/store/alpha/%2E%2E/%2e%2e/secret.txt",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/store/alpha%2f..%2f..%2fsecret.txt",
            StatusCode::BAD_REQUEST,
        ),
        ("/store//etc/passwd", StatusCode::BAD_REQUEST),
        ("/store/%2fetc%2fpasswd", StatusCode::BAD_REQUEST),
        ("/run/%2e%2e/store/", StatusCode::BAD_REQUEST),
        ("/store/alpha/leak.txt", StatusCode::FORBIDDEN),
        ("/store/up/secret.txt", StatusCode::FORBIDDEN),
        ("/store/alpha/nope.txt", StatusCode::NOT_FOUND),
        ("/run/alpha/nope/", StatusCode::NOT_FOUND),
        ("/nope", StatusCode::NOT_FOUND),
    ] {
        let (status, _, body) = get(&app, uri).await;
        assert_eq!(status, expected, "{uri}: {body}");
        assert!(!body.contains("secret\n") && body != "secret", "{uri}");
    }
}
