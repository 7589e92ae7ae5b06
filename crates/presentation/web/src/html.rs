//! The pages' shell (head, navigation, the live stream's starting point) and the small pieces
//! every page uses: states, times, money, ids, pagers. maud escapes every value it is given, so a
//! title carrying `<script>` is text; `PreEscaped` appears only in the SVG, chart and diff renderers,
//! which escape their inputs themselves (a test greps for it).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maos_domain::{Timestamp, Usage, Usd};
use maud::{DOCTYPE, Markup, html};

use crate::ctx::{View, WebError};

/// Where a page sits in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Overview,
    Tasks,
    Approvals,
    Events,
    Metrics,
    /// A page of its own (an orchestration, a plan): no section is current.
    Elsewhere,
}

const SECTIONS: &[(Section, &str, &str)] = &[
    (Section::Overview, "/", "Overview"),
    (Section::Tasks, "/tasks", "Tasks"),
    (Section::Approvals, "/approvals", "Approvals"),
    (Section::Events, "/events", "Events"),
    (Section::Metrics, "/stats", "Metrics"),
];

/// A whole page: `title`, the navigation with `section` current, and `body`. The body's live
/// regions (elements with `data-live` and an `id`) are replaced when an event arrives.
pub(crate) fn page(view: &View, section: Section, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · MAOS" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body data-seq=(view.seq) data-csrf=(view.csrf) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" aria-label="MAOS overview" { "MAOS" }
                    nav aria-label="Sections" {
                        ul {
                            @for (s, href, name) in SECTIONS {
                                li {
                                    @if *s == section {
                                        a href=(href) aria-current="page" { (name) }
                                    } @else {
                                        a href=(href) { (name) }
                                    }
                                }
                            }
                        }
                    }
                    span.where title="The data directory this dashboard serves" { (view.label) }
                    span #live-status role="status" aria-live="polite" data-state="connecting" { "connecting…" }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// Escapes `text` into `out` for HTML or SVG text and attribute values: the five markup
/// characters become entities, and control characters (but newline and tab), which XML does
/// not allow, become spaces. The one escaper of the modules that write markup by hand
/// (`svg.rs`, `chart.rs`, `diff.rs`); maud escapes everything else.
pub(crate) fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
}

/// The response for a rendered page.
pub(crate) fn page_response(markup: Markup) -> Response {
    let mut response = markup.into_string().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A page saying why a request was refused (no token, wrong host, no CSRF token): no data, no
/// navigation.
pub(crate) fn refusal(title: &str, why: &str) -> Response {
    page_response(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · MAOS" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body {
                main #main.refused {
                    h1 { (title) }
                    p { (why) }
                }
            }
        }
    })
}

/// A page for an error of the application: what failed and its kind.
pub(crate) fn error_page(e: &WebError) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Error · MAOS" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body {
                header.top { a.brand href="/" { "MAOS" } }
                main #main {
                    h1 { (e.status().canonical_reason().unwrap_or("Error")) }
                    p.error role="alert" { (e.message) }
                    p { "Kind: " code { (e.kind.as_str()) } " · " a href="/" { "Back to the overview" } }
                }
            }
        }
    }
}

/// A state as a coloured badge (`state-running`, …): the word is always there, colour is extra.
pub(crate) fn state(name: &str) -> Markup {
    html! { span class={ "state state-" (name) } { (name.replace('_', " ")) } }
}

/// A time as `<time>`: RFC 3339 for machines and the title, `HH:MM:SS` (UTC) shown.
pub(crate) fn time(at: Timestamp) -> Markup {
    let full = at.to_rfc3339();
    let short = full.get(11..19).unwrap_or(&full).to_owned();
    html! { time datetime=(full) title=(full) { (short) } }
}

pub(crate) use maos_application::text::short_duration as duration_ms;

/// Money as `$0.0123`.
pub(crate) fn usd(cost: Usd) -> String {
    format!("${cost}")
}

/// Tokens in and out, with the cost.
pub(crate) fn usage(u: &Usage) -> Markup {
    html! {
        span.usage title="input tokens / output tokens" {
            (u.input_tokens) " in / " (u.output_tokens) " out · " (usd(u.cost))
        }
    }
}

/// A link to a task by its short id, with its full id as the title.
pub(crate) fn task_link(id: &maos_domain::TaskId) -> Markup {
    html! { a.id href={ "/tasks/" (id) } title=(id.to_string()) { (id.short()) } }
}

/// A link to an orchestration by its short id.
pub(crate) fn orchestration_link(id: &maos_domain::OrchestrationId) -> Markup {
    html! { a.id href={ "/orchestrations/" (id) } title=(id.to_string()) { (id.short()) } }
}

/// A progress bar with its numbers in words (for screen readers and for people).
pub(crate) fn progress(done: u64, total: u64, label: &str) -> Markup {
    html! {
        progress value=(done) max=(total.max(1)) aria-label=(label) {}
        " " span.progress-text { (done) "/" (total) }
    }
}

/// The hidden field every form carries.
pub(crate) fn csrf(view: &View) -> Markup {
    html! { input type="hidden" name="csrf" value=(view.csrf); }
}

/// A one-button form posting to `action`.
pub(crate) fn button(view: &View, action: &str, label: &str, class: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf(view))
            button type="submit" class=(class) { (label) }
        }
    }
}

/// Links to the previous and next page of a list that runs newest first.
pub(crate) fn pager(prev: Option<String>, next: Option<String>) -> Markup {
    pager_with(prev.map(|p| (p, "← Newer")), next.map(|n| (n, "Older →")))
}

/// Links to the previous and next page of a list, with their words.
pub(crate) fn pager_with(prev: Option<(String, &str)>, next: Option<(String, &str)>) -> Markup {
    html! {
        nav.pager aria-label="Pages" {
            @if let Some((p, words)) = prev { a rel="prev" href=(p) { (words) } }
            @if let Some((n, words)) = next { a rel="next" href=(n) { (words) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        let m = state("<script>alert(1)</script>");
        assert!(!m.into_string().contains("<script>"));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration_ms(999), "999ms");
        assert_eq!(duration_ms(1_250), "1.2s");
        assert_eq!(duration_ms(184_000), "3m04s");
        assert_eq!(duration_ms(3_720_000), "1h02m");
    }

    /// `PreEscaped` lets markup through unescaped: only the SVG and diff renderers may use it,
    /// and they escape what they draw themselves.
    #[test]
    fn pre_escaped_only_where_allowed() {
        let allowed = ["svg.rs", "diff.rs", "chart.rs"];
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offenders = Vec::new();
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).expect("read src").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if allowed.contains(&name) || name == "html.rs" {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if text.contains("PreEscaped") {
                    offenders.push(path.display().to_string());
                }
            }
        }
        assert!(offenders.is_empty(), "PreEscaped used in {offenders:?}");
    }
}
