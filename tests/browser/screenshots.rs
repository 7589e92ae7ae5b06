//! Every page, seen by a browser: it loads with HTTP 200, without a script error or a resource
//! refused by the Content-Security-Policy, and its screenshot is taken (1280×800). With
//! `MAOS_DOC_SCREENSHOTS=1` the screenshots of docs/dashboard.md are written into
//! docs/img/dashboard/; otherwise they go to target/browser-screenshots/.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cdp::quote;
use crate::support::World;

/// The pages docs/dashboard.md shows, by the name of their screenshot.
const DOC_PAGES: &[&str] = &[
    "overview",
    "orchestration",
    "task",
    "approvals",
    "events",
    "metrics",
];

fn root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::canonicalize(&root).unwrap_or(root)
}

#[test]
fn every_page_loads_cleanly_and_is_photographed() {
    let for_docs = std::env::var("MAOS_DOC_SCREENSHOTS").is_ok_and(|v| v == "1");
    let dir = if for_docs {
        root().join("docs/img/dashboard")
    } else {
        root().join("target/browser-screenshots")
    };
    let (world, data) = World::populated();
    let page = world.signed_in("screenshots");
    page.viewport(1280, 800);
    let _ = page.errors();
    let mut problems = Vec::new();
    for (name, path) in data.pages() {
        page.goto(&world.ui.at(&path));
        let status = page.js(&format!("fetch({}).then(r => r.status)", quote(&path)));
        if status != 200 {
            problems.push(format!("{name} ({path}): HTTP {status}"));
        }
        // Live, as a person would see it.
        page.wait_for(
            "document.getElementById('live-status') === null || \
             document.getElementById('live-status').dataset.state === 'live'",
            Duration::from_secs(10),
        );
        for e in page.errors() {
            problems.push(format!("{name} ({path}): {e}"));
        }
        let file = dir.join(format!("{name}.png"));
        if for_docs && !DOC_PAGES.contains(&name) {
            continue;
        }
        if let Err(e) = page.screenshot(&file) {
            problems.push(format!("{name}: no screenshot: {e}"));
        }
    }
    if !problems.is_empty() {
        page.fail(&format!("pages with problems:\n{}", problems.join("\n")));
    }
}

#[test]
fn the_policy_refuses_injected_script_and_the_suite_sees_it() {
    let world = World::new();
    let page = world.signed_in("policy");
    let _ = page.errors();
    // What an injection would try: an inline script, and a script from elsewhere.
    page.js(
        "const s = document.createElement('script'); s.textContent = 'window.__ran = 1'; \
         document.body.append(s); \
         const t = document.createElement('script'); t.src = 'http://example.invalid/x.js'; \
         document.body.append(t); true",
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        page.js("window.__ran === undefined"),
        true,
        "the inline script ran"
    );
    let errors = page.errors();
    assert!(
        errors
            .iter()
            .filter(|e| e.contains("Content Security Policy"))
            .count()
            >= 2,
        "both were refused, and the errors reached the suite: {errors:#?}"
    );
}
