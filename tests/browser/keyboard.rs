//! Basic accessibility: the keyboard reaches the skip link and the navigation first, and every
//! control and link on every page has a name a screen reader can say.

use std::time::Duration;

use serde_json::Value;

use crate::cdp::Page;
use crate::support::World;

/// Where the focus is: the element's tag, its `href` (links) and its text.
const FOCUSED: &str = "(() => { const e = document.activeElement; \
    return e ? [e.tagName.toLowerCase(), e.getAttribute('href') || '', e.textContent.trim()] : null; })()";

#[test]
fn tab_from_the_top_reaches_the_skip_link_and_the_navigation() {
    let world = World::new();
    let page = world.signed_in("keyboard");
    let mut seen = Vec::new();
    for _ in 0..7 {
        page.press("Tab", false);
        seen.push(page.js(FOCUSED));
    }
    let hrefs: Vec<&str> = seen
        .iter()
        .map(|v| v[1].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        hrefs,
        [
            "#main",
            "/",
            "/",
            "/tasks",
            "/approvals",
            "/events",
            "/stats"
        ],
        "the order Tab visits: {seen:#?}"
    );
    assert_eq!(seen[0][2], "Skip to content");
    // The skip link shows itself when it has the focus.
    page.press("Tab", true);
    page.press("Tab", true);
    page.press("Tab", true);
    page.press("Tab", true);
    page.press("Tab", true);
    page.press("Tab", true);
    assert_eq!(page.js(FOCUSED)[1], "#main", "Shift+Tab goes back");
    let visible = page.js(
        "(() => { const r = document.activeElement.getBoundingClientRect(); \
         return r.width > 0 && r.height > 0 && r.left >= 0 && r.top >= 0; })()",
    );
    assert_eq!(visible, true, "the focused skip link is on the screen");
    // Enter follows it: the focus moves to the content.
    page.press("Enter", false);
    page.wait_for(
        "document.activeElement && document.activeElement.id === 'main'",
        Duration::from_secs(5),
    );
    assert_eq!(page.text("location.hash"), "#main");
}

/// The controls and links of the page that have no accessible name (the HTML of each, cut).
const NAMELESS: &str = r#"(() => {
  const said = s => (s || '').replace(/\s+/g, ' ').trim();
  const byIds = ids => said((ids || '').split(/\s+/).map(id => {
    const l = id && document.getElementById(id); return l ? l.textContent : '';
  }).join(' '));
  const bad = [];
  for (const e of document.querySelectorAll('button, input, select, textarea, a[href], summary')) {
    if (e.type === 'hidden') continue;
    const tag = e.tagName;
    const own = (tag === 'BUTTON' || tag === 'A' || tag === 'SUMMARY') ? said(e.textContent) : '';
    const value = (tag === 'INPUT' && ['submit', 'button', 'reset'].includes(e.type)) ? said(e.value) : '';
    const name = said(e.getAttribute('aria-label')) || byIds(e.getAttribute('aria-labelledby'))
      || said(Array.from(e.labels || []).map(l => l.textContent).join(' '))
      || said(e.getAttribute('title')) || own || value;
    if (!name) bad.push(e.outerHTML.slice(0, 160));
  }
  return bad;
})()"#;

/// The controls and links of the page without an accessible name (their HTML, cut).
pub(crate) fn nameless(page: &Page<'_>) -> Vec<String> {
    match page.js(NAMELESS) {
        Value::Array(list) => list.iter().map(ToString::to_string).collect(),
        other => vec![format!("the check answered {other}")],
    }
}

#[test]
fn every_control_on_every_page_has_a_name() {
    let (world, data) = World::populated();
    let page = world.signed_in("labels");
    let mut problems = Vec::new();
    for (name, path) in data.pages() {
        page.goto(&world.ui.at(&path));
        let status = page.js(&format!(
            "fetch({}).then(r => r.status)",
            crate::cdp::quote(&path)
        ));
        if status != 200 {
            problems.push(format!("{name} ({path}): HTTP {status}"));
            continue;
        }
        for e in nameless(&page) {
            problems.push(format!("{name} ({path}): no accessible name: {e}"));
        }
        // Every page has one h1, a main landmark, and a language.
        let shape = page.js(
            "[document.querySelectorAll('h1').length, !!document.querySelector('main'), \
             document.documentElement.lang]",
        );
        if shape != serde_json::json!([1, true, "en"]) {
            problems.push(format!("{name} ({path}): [h1s, main, lang] = {shape}"));
        }
    }
    if !problems.is_empty() {
        page.fail(&format!("accessibility problems:\n{}", problems.join("\n")));
    }
}
