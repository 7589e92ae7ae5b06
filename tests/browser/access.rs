//! Who gets in and what gets through: the token opens the dashboard (and leaves the address
//! bar for an HttpOnly cookie), nothing opens without it, a post without the CSRF field is
//! refused, and a title carrying `<script>` is shown as text and never runs.

use std::time::Duration;

use serde_json::Value;

use crate::cdp::quote;
use crate::support::World;

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn the_token_opens_the_dashboard_and_nothing_opens_without_it() {
    let world = World::new();
    let ui = &world.ui;

    // With the token: the overview, and the token traded for a cookie scripts cannot read.
    let page = world.signed_in("token_opens");
    assert_eq!(
        page.text("location.search"),
        "",
        "the token left the address"
    );
    assert_eq!(page.text("location.pathname"), "/");
    assert!(
        !page
            .text("document.cookie")
            .contains(&token_of(&ui.with_token)),
        "the token cookie is HttpOnly"
    );
    assert!(
        page.text("document.title").starts_with("Overview"),
        "{}",
        page.text("document.title")
    );
    // The cookie alone opens it from now on.
    page.goto(&ui.at("/"));
    assert_eq!(
        page.text("document.querySelector('h1').textContent"),
        "Overview"
    );
    assert_eq!(page.js("fetch('/').then(r => r.status)"), 200);
    // Every response carries the strict policy.
    let csp = page.text("fetch('/').then(r => r.headers.get('content-security-policy'))");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");

    // A browser that never had the token: refused, and nothing of the data shown.
    let stranger = world.browser.page("token_refused", true);
    stranger.goto(&ui.at("/"));
    stranger.wait_for(
        "document.querySelector('h1') !== null",
        Duration::from_secs(5),
    );
    assert_eq!(
        stranger.text("document.querySelector('h1').textContent"),
        "token needed"
    );
    assert!(stranger.text("document.body.innerText").contains("maos ui"));
    assert_eq!(stranger.js("document.querySelector('nav') === null"), true);
    assert_eq!(stranger.js("fetch('/').then(r => r.status)"), 401);
    assert_eq!(stranger.js("fetch('/approvals').then(r => r.status)"), 401);
    assert_eq!(
        stranger.js("fetch('/live').then(r => r.status)"),
        401,
        "the live stream is closed too"
    );
    assert_eq!(
        stranger.js("fetch('/metrics').then(r => r.status)"),
        401,
        "and the figures for machines"
    );

    // A wrong token: refused as well, and no cookie given.
    let wrong = format!("{}/?token={}", ui.base, "0".repeat(32));
    stranger.goto(&wrong);
    assert_eq!(
        stranger.text("document.querySelector('h1').textContent"),
        "wrong token"
    );
    stranger.goto(&ui.at("/"));
    assert_eq!(
        stranger.text("document.querySelector('h1').textContent"),
        "token needed"
    );
}

/// The token in the address `maos ui` printed.
fn token_of(url: &str) -> String {
    url.split("token=").nth(1).unwrap_or_default().to_owned()
}

#[test]
fn a_post_without_the_csrf_field_is_refused() {
    let world = World::new();
    // A task no agent can take: it stays ready, and can be cancelled.
    let task = world.maos.ok_json(&[
        "task",
        "create",
        "Wait here",
        "--capability",
        "nobody-has-this",
        "--prompt",
        "p",
    ])["task"]["id"]
        .as_str()
        .expect("a task id")
        .to_owned();
    let page = world.signed_in("csrf");
    page.goto(&world.ui.at(&format!("/tasks/{task}")));

    // The page's own script could post; a form without the CSRF field is refused all the same,
    // whatever the action.
    for action in ["cancel", "retry", "approve", "reject"] {
        let js = format!(
            "fetch({}, {{method: 'POST', headers: {{'Content-Type': \
             'application/x-www-form-urlencoded'}}, body: 'reason=because'}}) \
             .then(r => r.text().then(t => [r.status, t]))",
            quote(&format!("/tasks/{task}/{action}"))
        );
        let got = page.js(&js);
        assert_eq!(got[0], 403, "POST {action} without csrf: {got}");
        assert!(
            got[1].as_str().unwrap_or_default().contains("CSRF"),
            "the refusal says why: {got}"
        );
        let js = format!(
            "fetch({}, {{method: 'POST', headers: {{'Content-Type': \
             'application/x-www-form-urlencoded'}}, body: 'csrf=0123456789abcdef0123456789abcdef&reason=x'}}) \
             .then(r => r.status)",
            quote(&format!("/tasks/{task}/{action}"))
        );
        assert_eq!(page.js(&js), 403, "POST {action} with a wrong csrf");
    }
    assert_eq!(world.maos.task(&task)["state"], "ready", "nothing changed");

    // A form on another site posting to the dashboard, even one that knows the CSRF token: the
    // browser sends no cookie with it (SameSite=Strict), and its origin is not ours.
    let csrf = page.text("document.body.dataset.csrf");
    let action = world.ui.at(&format!("/tasks/{task}/cancel"));
    let evil = format!(
        "<!doctype html><title>elsewhere</title><form method=post action='{action}'>\
         <input name=csrf value='{csrf}'><input name=reason value=evil>\
         <button>go</button></form>"
    );
    page.goto(&format!("data:text/html,{}", percent(&evil)));
    page.click_and_wait("button");
    let h1 = page.text("(document.querySelector('h1') || {}).textContent || ''");
    assert!(
        h1 == "token needed" || h1 == "cross-site request",
        "a cross-site form is refused: {}",
        page.text("document.body.innerText")
    );
    assert_eq!(world.maos.task(&task)["state"], "ready", "nothing changed");
    page.goto(&world.ui.at(&format!("/tasks/{task}")));

    // With the page's CSRF token the same post goes through (so the refusal was the token's).
    let js = format!(
        "fetch({}, {{method: 'POST', headers: {{'Content-Type': \
         'application/x-www-form-urlencoded'}}, body: new URLSearchParams({{csrf: \
         document.body.dataset.csrf, reason: 'not needed'}}).toString()}}).then(r => r.status)",
        quote(&format!("/tasks/{task}/cancel"))
    );
    assert_eq!(
        page.js(&js),
        200,
        "the redirect after the change is followed"
    );
    world.maos.wait_state(&task, "cancelled");
}

/// What a hostile title tries: a script element, an event handler, and markup breaking out of an
/// attribute. Each sets a flag if it ever runs.
const HOSTILE: &str = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\"> \"'><b>bold</b> & co";

#[test]
fn a_title_carrying_script_renders_as_text() {
    let world = World::new();
    // High risk: it waits for a person before it runs, so the overview and the inbox list it.
    let task = world.maos.ok_json(&[
        "task", "create", HOSTILE, "--risk", "high", "--prompt", HOSTILE,
    ])["task"]["id"]
        .as_str()
        .expect("a task id")
        .to_owned();
    // An orchestration named the same way, whose task waits for a person before it runs.
    let repo = crate::support::Repo::new();
    world
        .maos
        .agent("idle", "idle", 1, &world.maos.script("idle", "exit 1\n"));
    let plan = format!(
        "name = {name}\ngoal = {name}\n[[task]]\nid = \"a\"\ntitle = {name}\nprompt = \"p\"\n\
         risk = \"high\"\ncapabilities = [\"idle\"]\n",
        name = toml_string(HOSTILE)
    );
    let (orch, _) = world.maos.run_plan(&plan, &repo);

    let page = world.signed_in("script_as_text");
    for path in [
        "/".to_owned(),
        "/tasks".to_owned(),
        format!("/tasks/{task}"),
        "/approvals".to_owned(),
        format!("/orchestrations/{orch}"),
        "/events".to_owned(),
    ] {
        // The event log need not show titles; the other pages do.
        let shows_titles = path != "/events";
        page.goto(&world.ui.at(&path));
        // Give an injected handler every chance to run.
        std::thread::sleep(SECOND / 4);
        assert_eq!(
            page.js("window.__pwned === undefined"),
            true,
            "{path}: the title's script ran"
        );
        assert_eq!(
            page.js("document.querySelector('main script, main img[src=x], main b') === null"),
            true,
            "{path}: the title became markup"
        );
        let text = page.text("document.querySelector('main').textContent");
        assert!(
            !shows_titles || text.contains("<script>window.__pwned = 1</script>"),
            "{path}: the title is not shown as text:\n{text}"
        );
    }
    let title = page.js("document.title");
    assert!(matches!(title, Value::String(_)));
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string")
}

/// `text` percent-encoded for a `data:` URL.
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The value of a variable an agent is given through its configuration.
const SECRET: &str = "sup3r-s3cret-value-0042";
/// Text shaped like an API key.
const KEY: &str = "sk-ant-api03-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

#[test]
fn no_page_shows_a_secret_an_agent_printed() {
    let world = World::with(|maos| {
        let started = maos.run_env(&["daemon", "start"], &[("MAOS_TEST_SECRET", SECRET)]);
        assert!(
            started.status.success(),
            "{}",
            String::from_utf8_lossy(&started.stderr)
        );
    });
    let leaky = world.maos.script(
        "leaky",
        &format!(
            "echo \"using $MAOS_TEST_SECRET and {KEY}\"\n\
             echo \"stderr too: $MAOS_TEST_SECRET\" >&2\n\
             exit 1\n"
        ),
    );
    world.maos.ok_json(&[
        "agent",
        "register",
        "leaky",
        "--adapter",
        "command",
        "--command",
        &leaky,
        "--env",
        "MAOS_TEST_SECRET",
        "--capability",
        "leak",
    ]);
    let task = world.maos.ok_json(&[
        "task",
        "create",
        "Leak a secret",
        "--capability",
        "leak",
        "--max-attempts",
        "1",
        "--prompt",
        "p",
    ])["task"]["id"]
        .as_str()
        .expect("a task id")
        .to_owned();
    world.maos.wait_state(&task, "blocked");

    let page = world.signed_in("secrets");
    for path in [
        format!("/tasks/{task}"),
        "/tasks".to_owned(),
        "/events".to_owned(),
        "/".to_owned(),
        "/approvals".to_owned(),
    ] {
        page.goto(&world.ui.at(&path));
        // The log follower has fetched what there is.
        page.wait_for(
            "Array.from(document.querySelectorAll('pre[data-log]')).every(p => p.dataset.finished === '1')",
            Duration::from_secs(10),
        );
        let html = page.text("document.documentElement.outerHTML");
        for needle in [SECRET, KEY] {
            assert!(!html.contains(needle), "{path} shows {needle}");
        }
        if path.starts_with("/tasks/") {
            assert!(
                html.contains("[redacted]"),
                "{path} says what it hid:\n{html}"
            );
        }
    }
    // Nor does what the page's script fetches: the log itself.
    let log = page.text(&format!(
        "fetch({}).then(r => r.text())",
        quote(&format!("/tasks/{task}/log?attempt=1&offset=0"))
    ));
    assert!(log.contains("using [redacted] and [redacted]"), "{log}");
    for needle in [SECRET, KEY] {
        assert!(!log.contains(needle), "the log shows {needle}");
    }
}
