//! Charts drawn on the server as SVG: a bar chart with its axes, a `<title>` per bar (a tooltip,
//! and what a screen reader says), and the same numbers as a table for whoever cannot see the
//! chart. The SVG is written as text, so every text put in it goes through [`escape`] here; the
//! table is ordinary (escaped) markup.

use std::fmt::Write as _;

use maud::{Markup, PreEscaped, html};

/// One bar: its tick (shown under it; empty for none; a dozen at most are shown), its full
/// label (the tooltip and the table), and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bar {
    pub(crate) tick: String,
    pub(crate) label: String,
    pub(crate) value: u64,
}

/// The drawing's size in SVG units (it scales to the width of its box).
const WIDTH: u32 = 760;
const HEIGHT: u32 = 220;
/// Room for the axes' labels.
const LEFT: u32 = 44;
const BOTTOM: u32 = 36;
const TOP: u32 = 12;
const RIGHT: u32 = 8;
/// The most tick labels under the bars.
const TICKS: usize = 12;

/// Escapes text for SVG (XML) content and attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    crate::html::escape_into(s, &mut out);
    out
}

/// A round step for an axis reaching `max`: 1, 2 or 5 times a power of ten, about four steps.
fn step(max: u64) -> u64 {
    let rough = max.div_ceil(4).max(1);
    let mut p = 1u64;
    loop {
        for m in [1, 2, 5] {
            if let Some(s) = p.checked_mul(m)
                && s >= rough
            {
                return s;
            }
        }
        match p.checked_mul(10) {
            Some(n) => p = n,
            None => return rough,
        }
    }
}

/// A bar chart of `bars` (oldest first), `id` naming its parts, `title` saying what it shows,
/// `unit` what a bar counts (`"completed"`); followed by a collapsed table of the same numbers.
pub(crate) fn bars(id: &str, title: &str, unit: &str, bars: &[Bar]) -> Markup {
    let svg = svg(id, title, unit, bars);
    html! {
        figure.chart {
            (PreEscaped(svg))
            figcaption { (title) }
            details {
                summary { "The numbers as a table" }
                table {
                    thead { tr { th scope="col" { "When" } th scope="col" { (unit) } } }
                    tbody {
                        @for b in bars {
                            tr { td { (b.label) } td.num { (b.value) } }
                        }
                    }
                }
            }
        }
    }
}

fn svg(id: &str, title: &str, unit: &str, bars: &[Bar]) -> String {
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0);
    let step = step(max);
    let top = max.div_ceil(step).max(1).saturating_mul(step);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let base = TOP + plot_h;
    let id = escape(id);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="bars" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{id}-t" preserveAspectRatio="xMidYMid meet"><title id="{id}-t">{}</title>"#,
        escape(title)
    );
    // The value axis: lines and labels at each step.
    let mut v = 0;
    while v <= top {
        let y = f64::from(base) - scale(v, top, plot_h);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text class="axis" x="{}" y="{:.1}" text-anchor="end">{v}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6,
            y + 4.0
        );
        match v.checked_add(step) {
            Some(next) => v = next,
            None => break,
        }
    }
    let _ = write!(
        s,
        r#"<line class="axis" x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{base}"/><line class="axis" x1="{LEFT}" x2="{}" y1="{base}" y2="{base}"/>"#,
        WIDTH - RIGHT
    );
    if bars.is_empty() {
        let _ = write!(
            s,
            r#"<text class="axis" x="{}" y="{}" text-anchor="middle">nothing in this window</text>"#,
            LEFT + plot_w / 2,
            TOP + plot_h / 2
        );
    } else {
        let n = u32::try_from(bars.len()).unwrap_or(u32::MAX);
        let slot = f64::from(plot_w) / f64::from(n);
        let gap = if slot > 4.0 { slot * 0.15 } else { 0.0 };
        // The caller's ticks (an empty one is none), thinned to at most a dozen.
        let given = bars.iter().filter(|b| !b.tick.is_empty()).count();
        let every = given.div_ceil(TICKS).max(1);
        let mut nth = 0usize;
        for (i, b) in bars.iter().enumerate() {
            let x = f64::from(LEFT) + slot * f64::from(u32::try_from(i).unwrap_or(0));
            let h = scale(b.value, top, plot_h);
            let _ = write!(
                s,
                r#"<rect class="bar" x="{:.2}" y="{:.2}" width="{:.2}" height="{h:.2}"><title>{}: {} {}</title></rect>"#,
                x + gap / 2.0,
                f64::from(base) - h,
                (slot - gap).max(0.5),
                escape(&b.label),
                b.value,
                escape(unit)
            );
            if b.tick.is_empty() {
                continue;
            }
            nth += 1;
            if (nth - 1).is_multiple_of(every) {
                let _ = write!(
                    s,
                    r#"<text class="axis" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                    x + slot / 2.0,
                    base + 16,
                    escape(&b.tick)
                );
            }
        }
    }
    s.push_str("</svg>");
    s
}

/// The height of `v` on an axis of `top` drawn `height` units high.
fn scale(v: u64, top: u64, height: u32) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let share = v as f64 / top.max(1) as f64;
    share * f64::from(height)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(tick: &str, value: u64) -> Bar {
        Bar {
            tick: tick.to_owned(),
            label: format!("{tick} <b>&"),
            value,
        }
    }

    #[test]
    fn text_in_the_drawing_is_escaped() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let m = bars("c<", "Tasks <script>", "done\"", &[bar("<i>", 3)]).into_string();
        assert!(!m.contains("<script>"));
        assert!(!m.contains("<b>"));
        assert!(!m.contains("<i>"));
        assert!(m.contains("Tasks &lt;script&gt;"));
        assert!(m.contains("id=\"c&lt;-t\""));
    }

    #[test]
    fn every_bar_has_a_title_and_a_row() {
        let data: Vec<Bar> = (0..30).map(|i| bar(&format!("h{i}"), i)).collect();
        let m = bars("x", "T", "completed", &data).into_string();
        assert_eq!(m.matches("<rect class=\"bar\"").count(), 30);
        assert_eq!(m.matches("<title>").count(), 30);
        assert!(m.contains("<title>h7 &lt;b&gt;&amp;: 7 completed</title>"));
        assert_eq!(m.matches("<tr><td>").count(), 30);
        // At most a dozen ticks under the bars.
        assert!(m.matches("text-anchor=\"middle\"").count() <= TICKS);
        // The tallest bar reaches a round top of the axis: 29 → 30 in steps of 10.
        assert!(m.contains(">30</text>"));
    }

    #[test]
    fn axes_step_roundly() {
        assert_eq!(step(0), 1);
        assert_eq!(step(3), 1);
        assert_eq!(step(7), 2);
        assert_eq!(step(29), 10);
        assert_eq!(step(170), 50);
        assert_eq!(step(u64::MAX), 5_000_000_000_000_000_000);
        // Values near the largest do not overflow the axis.
        let huge = bars("h", "Huge", "n", &[bar("a", u64::MAX)]).into_string();
        assert!(huge.contains("<rect"));
        let empty = bars("e", "Nothing", "completed", &[]).into_string();
        assert!(empty.contains("nothing in this window"));
    }
}
