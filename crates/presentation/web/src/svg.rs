//! Server-side SVG: a task graph drawn as a layered DAG, and a Gantt timeline of attempts.
//!
//! Both are written straight into a `String` (with its capacity reserved up front) and handed to
//! maud as `PreEscaped`, so every piece of text drawn here goes through [`esc`] first.
//!
//! **The graph.** Layers are longest paths from the roots (Kahn's topological order, O(n + e));
//! within a layer nodes are ordered by the mean position of their dependencies in earlier layers
//! (one barycentre pass, so edges cross less); the critical path is the heaviest chain, a node
//! weighing its attempts' known durations, ties (and graphs without durations) broken by the
//! number of tasks. Every node is a link (when it has a target) with a `<title>` and an
//! `aria-label`; critical nodes and edges carry the class `critical`.
//!
//! A graph of more than [`MAX_DRAWN`] nodes would be thousands of boxes nobody can read and a
//! page of megabytes, so it is drawn as a summary instead: one stacked bar per layer (layers
//! grouped so that at most [`MAX_COLUMNS`] bars are drawn), coloured by state, each with its
//! counts as a tooltip. The caller says so on the page and lists the critical path and the
//! tasks (paginated) in text.
//!
//! **The timeline.** One row per agent (by name), one bar per attempt from its start (its
//! assignment when it has not started) to its end (now, while it runs), coloured by outcome. At
//! most [`MAX_BARS`] bars are drawn: the newest.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use maos_domain::Timestamp;
use maud::{Markup, PreEscaped};

/// The most nodes drawn one by one; beyond, a summary by layer.
pub(crate) const MAX_DRAWN: usize = 400;

/// The most bars the summary of a large graph draws.
pub(crate) const MAX_COLUMNS: usize = 120;

/// The most attempts the timeline draws.
pub(crate) const MAX_BARS: usize = 1_000;

/// One node of a graph to draw.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Where it links to (none: not a link, as a task of a plan not yet approved).
    pub(crate) href: Option<String>,
    /// The short text drawn in its box (cut to fit).
    pub(crate) label: String,
    /// The full text of its tooltip and accessible name.
    pub(crate) title: String,
    /// Its class suffix: `state-<state>` (a task state, or a plan task's risk).
    pub(crate) state: &'static str,
    /// The indexes of the nodes it depends on (out-of-range indexes are ignored).
    pub(crate) deps: Vec<usize>,
    /// How long its attempts took, when known (weighs it on the critical path).
    pub(crate) ms: Option<u64>,
}

/// A graph laid out: its layers, the critical path, and its drawing.
#[derive(Debug)]
pub(crate) struct Drawn {
    pub(crate) svg: Markup,
    /// The critical path, from a root to its end (node indexes).
    pub(crate) critical: Vec<usize>,
    /// Each node's layer (0: the roots).
    pub(crate) layer: Vec<usize>,
    /// How many layers it has.
    pub(crate) layers: usize,
    /// False when it was drawn as a summary by layer.
    pub(crate) full: bool,
}

/// Escapes text for SVG content and attribute values.
pub(crate) use crate::html::escape_into as esc;

/// `s` cut to `max` characters, with an ellipsis when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Layers (longest path from a root) and a topological order, in O(n + e). Nodes on a cycle
/// (which a graph of tasks never has) are put in layer 0 and left out of the order.
pub(crate) fn layers(deps: &[Vec<usize>]) -> (Vec<usize>, Vec<usize>) {
    let n = deps.len();
    let mut indegree = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            if d < n && d != i {
                indegree[i] += 1;
                dependents[d].push(i);
            }
        }
    }
    let mut order: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut layer = vec![0usize; n];
    let mut head = 0;
    while head < order.len() {
        let i = order[head];
        head += 1;
        for &j in &dependents[i] {
            layer[j] = layer[j].max(layer[i] + 1);
            indegree[j] -= 1;
            if indegree[j] == 0 {
                order.push(j);
            }
        }
    }
    (layer, order)
}

/// The heaviest chain: each node weighs (its known duration, 1), compared as a pair, so that
/// durations decide where known and the count of tasks otherwise. Returned from root to end.
pub(crate) fn critical_path(nodes: &[Node], order: &[usize]) -> Vec<usize> {
    let n = nodes.len();
    let mut best: Vec<(u64, u64)> = vec![(0, 0); n];
    let mut prev: Vec<Option<usize>> = vec![None; n];
    for &i in order {
        let mut from: (u64, u64) = (0, 0);
        for &d in &nodes[i].deps {
            if d < n && d != i && best[d] > from {
                from = best[d];
                prev[i] = Some(d);
            }
        }
        let own = (nodes[i].ms.unwrap_or(0), 1);
        best[i] = (from.0.saturating_add(own.0), from.1.saturating_add(own.1));
    }
    let Some(mut end) = order
        .iter()
        .copied()
        .max_by_key(|&i| (best[i], usize::MAX - i))
    else {
        return Vec::new();
    };
    let mut path = vec![end];
    while let Some(p) = prev[end] {
        path.push(p);
        end = p;
    }
    path.reverse();
    path
}

const COL: u32 = 190;
const BOX_W: u32 = 160;
const BOX_H: u32 = 30;
const ROW: u32 = 42;
const PAD: u32 = 10;

/// Lays out and draws `nodes` (see the module's documentation); `label` names the figure.
pub(crate) fn dag(nodes: &[Node], label: &str) -> Drawn {
    let deps: Vec<Vec<usize>> = nodes.iter().map(|n| n.deps.clone()).collect();
    let (layer, order) = layers(&deps);
    let critical = critical_path(nodes, &order);
    let layers = layer.iter().copied().max().map_or(0, |m| m + 1);
    if nodes.len() > MAX_DRAWN {
        return Drawn {
            svg: summary(nodes, &layer, layers, &critical, label),
            critical,
            layer,
            layers,
            full: false,
        };
    }
    let n = nodes.len();
    let mut on_path = vec![false; n];
    let mut path_prev: Vec<Option<usize>> = vec![None; n];
    for (k, &i) in critical.iter().enumerate() {
        on_path[i] = true;
        if k > 0 {
            path_prev[i] = Some(critical[k - 1]);
        }
    }
    // Nodes of each layer, ordered by the mean row of their dependencies.
    let mut by_layer: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for i in 0..n {
        by_layer[layer[i]].push(i);
    }
    let mut row = vec![0usize; n];
    for members in &mut by_layer {
        let key = |i: usize| -> (u64, usize) {
            let ds: Vec<usize> = nodes[i].deps.iter().copied().filter(|&d| d < n).collect();
            if ds.is_empty() {
                return (0, i);
            }
            let sum: usize = ds.iter().map(|&d| row[d]).sum();
            // Mean row × 1000, as an integer to sort by.
            let mean = (sum as u64).saturating_mul(1000) / ds.len() as u64;
            (mean, i)
        };
        let mut keyed: Vec<((u64, usize), usize)> = members.iter().map(|&i| (key(i), i)).collect();
        keyed.sort_unstable();
        for (r, (_, i)) in keyed.iter().enumerate() {
            row[*i] = r;
        }
        *members = keyed.into_iter().map(|(_, i)| i).collect();
    }
    let rows = by_layer.iter().map(Vec::len).max().unwrap_or(0);
    let width = PAD * 2 + COL * u32::try_from(layers.max(1)).unwrap_or(u32::MAX / COL);
    let height = PAD * 2 + ROW * u32::try_from(rows.max(1)).unwrap_or(u32::MAX / ROW);
    let x = |i: usize| PAD + COL * u32::try_from(layer[i]).unwrap_or(0);
    let y = |i: usize| PAD + ROW * u32::try_from(row[i]).unwrap_or(0);

    let mut s = String::with_capacity(512 + n * 420);
    let _ = write!(
        s,
        r#"<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="group" aria-label=""#
    );
    esc(label, &mut s);
    s.push_str("\">");
    // Edges first, under the nodes.
    s.push_str(r#"<g class="edges">"#);
    for (i, node) in nodes.iter().enumerate() {
        for &d in &node.deps {
            if d >= n || d == i {
                continue;
            }
            let (x1, y1) = (x(d) + BOX_W, y(d) + BOX_H / 2);
            let (x2, y2) = (x(i), y(i) + BOX_H / 2);
            let mid = (x1 + x2) / 2;
            let class = if path_prev[i] == Some(d) {
                "edge critical"
            } else {
                "edge"
            };
            let _ = write!(
                s,
                r#"<path class="{class}" d="M{x1} {y1}C{mid} {y1} {mid} {y2} {x2} {y2}"/>"#
            );
        }
    }
    s.push_str("</g>");
    for (i, node) in nodes.iter().enumerate() {
        let critical = if on_path[i] { " critical" } else { "" };
        let _ = write!(
            s,
            r#"<g class="node state-{}{critical}" transform="translate({},{})">"#,
            node.state,
            x(i),
            y(i)
        );
        if let Some(href) = &node.href {
            s.push_str("<a href=\"");
            esc(href, &mut s);
            s.push_str("\" aria-label=\"");
            esc(&node.title, &mut s);
            s.push_str("\">");
        }
        s.push_str("<title>");
        esc(&node.title, &mut s);
        s.push_str("</title>");
        let _ = write!(
            s,
            r#"<rect width="{BOX_W}" height="{BOX_H}" rx="5"/><text x="8" y="19">"#
        );
        esc(&cut(&node.label, 22), &mut s);
        s.push_str("</text>");
        if node.href.is_some() {
            s.push_str("</a>");
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    Drawn {
        svg: PreEscaped(s),
        critical,
        layer,
        layers,
        full: true,
    }
}

/// A large graph as stacked bars of states, one per group of layers.
fn summary(
    nodes: &[Node],
    layer: &[usize],
    layers: usize,
    critical: &[usize],
    label: &str,
) -> Markup {
    let per = layers.div_ceil(MAX_COLUMNS).max(1);
    let columns = layers.div_ceil(per).max(1);
    // Counts by state per column, and whether the critical path passes.
    let mut counts: Vec<BTreeMap<&'static str, u32>> = vec![BTreeMap::new(); columns];
    for (i, node) in nodes.iter().enumerate() {
        *counts[layer[i] / per].entry(node.state).or_insert(0) += 1;
    }
    let mut on_path = vec![false; columns];
    for &i in critical {
        on_path[layer[i] / per] = true;
    }
    let tallest = counts
        .iter()
        .map(|c| c.values().sum::<u32>())
        .max()
        .unwrap_or(1)
        .max(1);
    // Bars fill about 960 pixels: wide when the layers are few.
    let bar = (960 / u32::try_from(columns).unwrap_or(1).max(1)).clamp(4, 24) - 2;
    const GAP: u32 = 2;
    const H: u32 = 160;
    let width = PAD * 2 + (bar + GAP) * u32::try_from(columns).unwrap_or(1);
    let height = PAD * 2 + H + 16;
    let mut s = String::with_capacity(512 + columns * 400);
    let _ = write!(
        s,
        r#"<svg class="dag summary" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label=""#
    );
    esc(label, &mut s);
    let _ = write!(
        s,
        r#": {} tasks in {layers} layers, drawn as one bar per {per} layer(s)">"#,
        nodes.len()
    );
    for (c, by_state) in counts.iter().enumerate() {
        let total: u32 = by_state.values().sum();
        let x = PAD + (bar + GAP) * u32::try_from(c).unwrap_or(0);
        let first = c * per;
        let last = (first + per).min(layers) - 1;
        let crit = if on_path[c] { " critical" } else { "" };
        let _ = write!(s, r#"<g class="layer{crit}"><title>"#);
        if first == last {
            let _ = write!(s, "layer {}: {total} tasks", first + 1);
        } else {
            let _ = write!(s, "layers {}–{}: {total} tasks", first + 1, last + 1);
        }
        for (state, k) in by_state {
            let _ = write!(s, ", {k} {}", state.replace('_', " "));
        }
        s.push_str("</title>");
        let mut top = PAD + H;
        for (state, k) in by_state {
            let h = (u64::from(*k) * u64::from(H) / u64::from(tallest)).max(1);
            let h = u32::try_from(h).unwrap_or(H);
            top = top.saturating_sub(h);
            let _ = write!(
                s,
                r#"<rect class="state-{state}" x="{x}" y="{top}" width="{bar}" height="{h}"/>"#
            );
        }
        if on_path[c] {
            let _ = write!(
                s,
                r#"<rect class="path-mark" x="{x}" y="{}" width="{bar}" height="4"/>"#,
                PAD + H + 4
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</svg>");
    PreEscaped(s)
}

/// One attempt on the timeline.
#[derive(Debug, Clone)]
pub(crate) struct Bar {
    pub(crate) agent: String,
    pub(crate) href: String,
    /// Its tooltip and accessible name.
    pub(crate) title: String,
    /// Its class suffix: `outcome-<outcome>`.
    pub(crate) outcome: &'static str,
    pub(crate) start: Timestamp,
    /// None while it runs (drawn to `now`).
    pub(crate) end: Option<Timestamp>,
}

/// The timeline drawn, and how many attempts were left out.
#[derive(Debug)]
pub(crate) struct Timeline {
    pub(crate) svg: Markup,
    pub(crate) left_out: usize,
}

const LABEL_W: u32 = 150;
const CHART_W: u32 = 860;
const LANE: u32 = 24;

/// The Gantt chart of `bars` at `now` (see the module's documentation).
pub(crate) fn timeline(mut bars: Vec<Bar>, now: Timestamp, label: &str) -> Timeline {
    let mut left_out = 0;
    if bars.len() > MAX_BARS {
        bars.sort_by_key(|b| std::cmp::Reverse(b.start));
        left_out = bars.len() - MAX_BARS;
        bars.truncate(MAX_BARS);
    }
    let mut agents: BTreeMap<&str, usize> = BTreeMap::new();
    for b in &bars {
        agents.entry(b.agent.as_str()).or_insert(0);
    }
    for (k, lane) in agents.values_mut().enumerate() {
        *lane = k;
    }
    let start = bars.iter().map(|b| b.start.as_millis()).min().unwrap_or(0);
    let end = bars
        .iter()
        .map(|b| b.end.unwrap_or(now).as_millis())
        .max()
        .unwrap_or(start)
        .max(start + 1);
    let span = (end - start) as f64;
    let px =
        |t: i64| -> f64 { f64::from(LABEL_W) + (t - start) as f64 / span * f64::from(CHART_W) };
    let lanes = u32::try_from(agents.len()).unwrap_or(1).max(1);
    let width = LABEL_W + CHART_W + PAD * 2;
    let height = PAD + lanes * LANE + 24;
    let mut s = String::with_capacity(512 + bars.len() * 300);
    let _ = write!(
        s,
        r#"<svg class="gantt" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="group" aria-label=""#
    );
    esc(label, &mut s);
    s.push_str("\">");
    for (agent, lane) in &agents {
        let y = PAD + u32::try_from(*lane).unwrap_or(0) * LANE;
        let _ = write!(
            s,
            r#"<g class="lane"><rect class="lane-bg" x="0" y="{y}" width="{}" height="{LANE}"/><text x="4" y="{}">"#,
            LABEL_W + CHART_W,
            y + 16
        );
        esc(&cut(agent, 20), &mut s);
        s.push_str("</text></g>");
    }
    // Five ticks on the time axis.
    let axis = PAD + lanes * LANE + 14;
    for k in 0..=4i64 {
        let t = start + (end - start) * k / 4;
        let x = px(t);
        let at = Timestamp::from_millis(t).to_rfc3339();
        // HH:MM:SS, with tenths when the whole span is a few seconds (else ticks repeat).
        let hms = if end - start < 10_000 {
            let tenths = t.rem_euclid(1000) / 100;
            format!("{}.{tenths}", at.get(11..19).unwrap_or(&at))
        } else {
            at.get(11..19).unwrap_or(&at).to_owned()
        };
        let anchor = match k {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            s,
            r#"<text class="tick" x="{x:.1}" y="{axis}" text-anchor="{anchor}">{hms}</text>"#
        );
    }
    for b in &bars {
        let lane = agents.get(b.agent.as_str()).copied().unwrap_or(0);
        let y = PAD + u32::try_from(lane).unwrap_or(0) * LANE + 4;
        let x1 = px(b.start.as_millis());
        let x2 = px(b.end.unwrap_or(now).as_millis());
        let w = (x2 - x1).max(2.0);
        let running = if b.end.is_none() { " open" } else { "" };
        s.push_str("<a href=\"");
        esc(&b.href, &mut s);
        s.push_str("\" aria-label=\"");
        esc(&b.title, &mut s);
        let _ = write!(
            s,
            r#""><rect class="bar outcome-{}{running}" x="{x1:.1}" y="{y}" width="{w:.1}" height="{}"><title>"#,
            b.outcome,
            LANE - 8
        );
        esc(&b.title, &mut s);
        s.push_str("</title></rect></a>");
    }
    s.push_str("</svg>");
    Timeline {
        svg: PreEscaped(s),
        left_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(title: &str, deps: &[usize], ms: Option<u64>) -> Node {
        Node {
            href: Some(format!("/tasks/{title}")),
            label: title.to_owned(),
            title: title.to_owned(),
            state: "pending",
            deps: deps.to_vec(),
            ms,
        }
    }

    #[test]
    fn layers_are_longest_paths_from_the_roots() {
        // 0 → 1 → 3, 0 → 3, 2 alone.
        let deps = vec![vec![], vec![0], vec![], vec![0, 1]];
        let (layer, order) = layers(&deps);
        assert_eq!(layer, vec![0, 1, 0, 2]);
        assert_eq!(order.len(), 4);
    }

    #[test]
    fn a_cycle_does_not_hang_or_panic() {
        let deps = vec![vec![1], vec![0], vec![7]];
        let (layer, order) = layers(&deps);
        assert_eq!(layer.len(), 3);
        assert_eq!(order, vec![2]);
        let nodes: Vec<Node> = deps.iter().map(|d| node("x", d, None)).collect::<Vec<_>>();
        let drawn = dag(&nodes, "g");
        assert_eq!(drawn.critical, vec![2]);
    }

    #[test]
    fn the_critical_path_follows_durations_where_known_else_the_count() {
        // a → b → c (short) and a → d (long).
        let nodes = vec![
            node("a", &[], Some(10)),
            node("b", &[0], Some(10)),
            node("c", &[1], Some(10)),
            node("d", &[0], Some(1_000)),
        ];
        let (_, order) = layers(&nodes.iter().map(|n| n.deps.clone()).collect::<Vec<_>>());
        assert_eq!(critical_path(&nodes, &order), vec![0, 3]);
        let counted: Vec<Node> = nodes.into_iter().map(|n| Node { ms: None, ..n }).collect();
        assert_eq!(critical_path(&counted, &order), vec![0, 1, 2]);
    }

    #[test]
    fn text_is_escaped_and_critical_nodes_marked() {
        let nodes = vec![
            node("<script>alert(1)</script>", &[], None),
            node("b\"'&", &[0], None),
        ];
        let drawn = dag(&nodes, "a <graph>");
        let s = drawn.svg.into_string();
        assert!(!s.contains("<script>"), "{s}");
        assert!(s.contains("&lt;script&gt;"));
        assert!(s.contains("b&quot;&#39;&amp;"));
        assert!(s.contains("aria-label=\"a &lt;graph&gt;\""));
        assert_eq!(s.matches("<g class=\"node").count(), 2);
        assert_eq!(
            s.matches("critical").count(),
            3,
            "two nodes and an edge: {s}"
        );
    }

    #[test]
    fn a_large_graph_is_summarised_by_layer() {
        let nodes: Vec<Node> = (0..MAX_DRAWN * 3)
            .map(|i| node("t", if i == 0 { &[] } else { &[0] }, None))
            .collect();
        let drawn = dag(&nodes, "big");
        assert!(!drawn.full);
        assert_eq!(drawn.layers, 2);
        let s = drawn.svg.into_string();
        assert!(!s.contains("<g class=\"node"));
        assert!(s.contains(&format!("{} tasks", MAX_DRAWN * 3 - 1)));
    }

    #[test]
    fn the_timeline_has_a_lane_per_agent_and_caps_its_bars() {
        let bar = |agent: &str, ms: i64| Bar {
            agent: agent.to_owned(),
            href: "/tasks/x".to_owned(),
            title: "<b>".to_owned(),
            outcome: "succeeded",
            start: Timestamp::from_millis(ms),
            end: Some(Timestamp::from_millis(ms + 500)),
        };
        let t = timeline(
            vec![bar("a", 0), bar("b", 100), bar("a", 1000)],
            Timestamp::from_millis(5000),
            "t",
        );
        let s = t.svg.into_string();
        assert_eq!(s.matches("class=\"lane\"").count(), 2);
        assert_eq!(s.matches("class=\"bar ").count(), 3);
        // A span of 1.5 s: ticks in tenths of a second, none repeated.
        assert!(
            s.contains(">00:00:00.0<") && s.contains(">00:00:01.5<"),
            "{s}"
        );
        assert!(!s.contains("<b>"));
        let many: Vec<Bar> = (0..MAX_BARS as i64 + 5).map(|i| bar("a", i)).collect();
        assert_eq!(timeline(many, Timestamp::from_millis(0), "t").left_out, 5);
    }
}
