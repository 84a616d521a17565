//! The dashboard's picture of a recovery plan: its steps and their dependencies drawn as an
//! inline SVG, server-side, so the page needs no layout code in the browser.
//!
//! Each step is a `<g class="node st-…" data-step="…">`; the page keeps the drawing live by
//! swapping the `st-…` class (see [`status_class`]) as step states change, and the `<style>`
//! inside the SVG colours every state, so the drawing also reads correctly on its own.
//!
//! Layout is layered: main steps run left to right in columns by dependency depth, `finally`
//! steps get their own columns after them, compensations a row underneath.

use std::collections::BTreeSet;

/// One step to draw.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub lane: Lane,
    /// Indices into the slice given to [`render`]; invalid ones are ignored.
    pub needs: Vec<usize>,
    /// The step's state as the journal words it, e.g. `running` or `failed (tolerated)`.
    pub status: &'a str,
}

/// Which part of the plan a step belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lane {
    Main,
    Finally,
    Compensation,
}

const NODE_W: i64 = 180;
const NODE_H: i64 = 46;
const GAP_X: i64 = 56;
const GAP_Y: i64 = 20;
const PITCH_X: i64 = NODE_W + GAP_X;
// Even, so centring a short column (half a pitch per missing row) stays on whole pixels.
const PITCH_Y: i64 = NODE_H + GAP_Y;
const MARGIN: i64 = 16;
const LABEL_H: i64 = 20;
// What fits in a node at the fonts of `STYLE`.
const ID_CHARS: usize = 22;
const KIND_CHARS: usize = 28;

// Every selector is scoped to `svg.dag`: the SVG is inlined, so its style sheet applies to the
// whole page.
const STYLE: &str = r#"svg.dag{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif}
svg.dag .node rect,svg.dag .st-pending rect{fill:#eaeef2;stroke:#8c959f;stroke-width:1.5;transition:fill .4s ease,stroke .4s ease}
svg.dag .st-running rect{fill:#ddf4ff;stroke:#0969da;animation:dag-pulse 1.4s ease-in-out infinite}
svg.dag .st-retrying rect{fill:#fff8c5;stroke:#9a6700}
svg.dag .st-succeeded rect{fill:#dafbe1;stroke:#1a7f37}
svg.dag .st-failed rect{fill:#ffebe9;stroke:#cf222e}
svg.dag .st-tolerated rect{fill:#fff1e5;stroke:#bc4c00}
svg.dag .st-skipped rect{fill:#f6f8fa;stroke:#afb8c1;stroke-dasharray:5 3}
svg.dag .st-skipped text{fill:#8c959f}
@keyframes dag-pulse{0%,100%{stroke-width:1.5}50%{stroke-width:3.5}}
@media (prefers-reduced-motion:reduce){svg.dag .st-running rect{animation:none}}
svg.dag .dag-id{font-size:13px;font-weight:600;fill:#1f2328}
svg.dag .dag-kind{font-size:11px;fill:#57606a}
svg.dag .edge{fill:none;stroke:#8c959f;stroke-width:1.5}
svg.dag .edge-finally{stroke-dasharray:6 4}
svg.dag .dag-arrow{fill:#8c959f}
svg.dag .dag-label{font-size:11px;fill:#57606a;letter-spacing:.05em}
svg.dag .dag-separator{stroke:#d0d7de;stroke-dasharray:4 4}"#;

// One marker for all edges. Two drawings on one page repeat the id, but with identical
// content, so whichever the browser resolves draws the same arrow.
const DEFS: &str = concat!(
    r#"<defs><marker id="dag-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto">"#,
    r#"<path class="dag-arrow" d="M0,0 L10,5 L0,10 z"/></marker></defs>"#
);

const EMPTY_SVG: &str = concat!(
    r#"<svg xmlns="http://www.w3.org/2000/svg" class="dag" viewBox="0 0 160 40" width="160" height="40" "#,
    r#"role="img" aria-label="DAG of 0 steps">"#,
    r##"<text x="80" y="24" text-anchor="middle" font-size="13" fill="#57606a">no steps</text></svg>"##
);

/// Draws the plan as a complete `<svg>` element (no XML prolog) to inline in HTML.
///
/// An edge is drawn for each distinct, in-range, non-self entry of `needs`, including the
/// ones that close a cycle (cycles are broken only for placement).
pub fn render(nodes: &[Node]) -> String {
    if nodes.is_empty() {
        return EMPTY_SVG.to_string();
    }
    let layout = layout(nodes);
    let steps = if nodes.len() == 1 { "step" } else { "steps" };
    let mut out = format!(
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="dag" viewBox="0 0 {w} {h}" width="{w}" height="{h}" "#,
            r#"role="img" aria-label="DAG of {n} {steps}">"#
        ),
        w = layout.width,
        h = layout.height,
        n = nodes.len(),
        steps = steps,
    );
    out.push('\n');
    out.push_str("<style>\n");
    out.push_str(STYLE);
    out.push_str("\n</style>\n");
    out.push_str(DEFS);
    out.push('\n');
    out.push_str(&render_decorations(&layout));
    out.push_str("<g class=\"dag-edges\">\n");
    for (from, to) in valid_edges(nodes) {
        out.push_str(&render_edge(nodes, &layout, from, to));
    }
    out.push_str("</g>\n<g class=\"dag-nodes\">\n");
    for (node, &at) in nodes.iter().zip(&layout.boxes) {
        out.push_str(&render_node(node, at));
    }
    out.push_str("</g>\n</svg>");
    out
}

/// The CSS class for a step state: `st-` and a lower-case slug of it, with
/// `failed (tolerated)` shortened to `st-tolerated`.
pub fn status_class(status: &str) -> String {
    let slug = slug(status);
    match slug.as_str() {
        "failed-tolerated" => "st-tolerated".to_string(),
        "" => "st-unknown".to_string(),
        _ => format!("st-{slug}"),
    }
}

/// Lower-case ASCII letters, digits and single dashes, so any state is a safe class name.
fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Point {
    pub(crate) x: i64,
    pub(crate) y: i64,
}

/// Where everything goes, in SVG user units.
#[derive(Debug)]
pub(crate) struct Layout {
    /// Top-left corner of each node's box, by input index.
    pub(crate) boxes: Vec<Point>,
    pub(crate) width: i64,
    pub(crate) height: i64,
    pub(crate) finally_label: Option<Point>,
    /// Top and bottom of the dashed line between main and finally columns.
    pub(crate) separator: Option<(Point, Point)>,
    pub(crate) compensation_label: Option<Point>,
}

/// Places every node: main columns, then finally columns, then the compensation row.
pub(crate) fn layout(nodes: &[Node]) -> Layout {
    let preds = lane_preds(nodes);
    let main = lane_columns(nodes, Lane::Main, &preds);
    let finally = lane_columns(nodes, Lane::Finally, &preds);
    let compensations: Vec<usize> = members(nodes, Lane::Compensation);

    let mut boxes = vec![Point::default(); nodes.len()];
    let rows = main.iter().chain(&finally).map(Vec::len).max().unwrap_or(0) as i64;
    let top = MARGIN + if finally.is_empty() { 0 } else { LABEL_H };
    for (col, column) in main.iter().chain(&finally).enumerate() {
        // Centre short columns against the tallest so fan-ins and fan-outs look symmetric.
        let shift = (rows - column.len() as i64) * PITCH_Y / 2;
        for (row, &v) in column.iter().enumerate() {
            boxes[v] = Point {
                x: column_x(col),
                y: top + shift + row as i64 * PITCH_Y,
            };
        }
    }

    let graph_bottom = if rows == 0 { MARGIN } else { top + rows * PITCH_Y - GAP_Y };
    let finally_x = column_x(main.len());
    let finally_label = (!finally.is_empty()).then_some(Point {
        x: finally_x,
        y: MARGIN + LABEL_H - 6,
    });
    let separator = (!main.is_empty() && !finally.is_empty()).then_some((
        Point {
            x: finally_x - GAP_X / 2,
            y: MARGIN,
        },
        Point {
            x: finally_x - GAP_X / 2,
            y: graph_bottom,
        },
    ));

    let mut bottom = graph_bottom;
    let mut compensation_label = None;
    if !compensations.is_empty() {
        let row_y = if rows == 0 {
            MARGIN + LABEL_H
        } else {
            graph_bottom + GAP_Y + LABEL_H
        };
        for (col, &v) in compensations.iter().enumerate() {
            boxes[v] = Point {
                x: column_x(col),
                y: row_y,
            };
        }
        compensation_label = Some(Point { x: MARGIN, y: row_y - 6 });
        bottom = row_y + NODE_H;
    }

    let columns = (main.len() + finally.len()).max(compensations.len()) as i64;
    let span = if columns == 0 { 0 } else { columns * PITCH_X - GAP_X };
    Layout {
        boxes,
        width: span + 2 * MARGIN,
        height: bottom + MARGIN,
        finally_label,
        separator,
        compensation_label,
    }
}

fn column_x(col: usize) -> i64 {
    MARGIN + col as i64 * PITCH_X
}

fn members(nodes: &[Node], lane: Lane) -> Vec<usize> {
    nodes.iter().enumerate().filter(|(_, n)| n.lane == lane).map(|(i, _)| i).collect()
}

/// Distinct `(dependency, dependant)` pairs, with out-of-range and self references dropped.
fn valid_edges(nodes: &[Node]) -> Vec<(usize, usize)> {
    let mut edges = Vec::new();
    for (to, node) in nodes.iter().enumerate() {
        let mut seen = Vec::new();
        for &from in &node.needs {
            if from < nodes.len() && from != to && !seen.contains(&from) {
                seen.push(from);
                edges.push((from, to));
            }
        }
    }
    edges
}

/// Dependencies that shape the layout: only those within the same main or finally lane, as
/// the lanes are placed one after another anyway and compensations simply line up.
fn lane_preds(nodes: &[Node]) -> Vec<Vec<usize>> {
    let mut preds = vec![Vec::new(); nodes.len()];
    for (from, to) in valid_edges(nodes) {
        let lane = nodes[to].lane;
        if lane != Lane::Compensation && nodes[from].lane == lane {
            preds[to].push(from);
        }
    }
    preds
}

/// The lane's nodes in columns (layer = longest path from a root), each column ordered to
/// reduce crossings.
fn lane_columns(nodes: &[Node], lane: Lane, preds: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let members = members(nodes, lane);
    let mut layer: Vec<Option<usize>> = vec![None; nodes.len()];
    // In topological order every placed dependency already has its layer; the ones still
    // without one close a cycle and are ignored, which is what breaks cycles.
    for v in topological_order(&members, preds) {
        layer[v] = Some(preds[v].iter().filter_map(|&u| layer[u]).max().map_or(0, |l| l + 1));
    }
    let mut columns: Vec<Vec<usize>> = Vec::new();
    for &v in &members {
        if let Some(l) = layer[v] {
            if columns.len() <= l {
                columns.resize(l + 1, Vec::new());
            }
            columns[l].push(v);
        }
    }
    order_columns(&mut columns, &layer, preds);
    columns
}

/// Kahn's algorithm, lowest index first; when only cycles remain, the lowest unplaced index
/// is taken as if its dependencies were done, so cyclic input still ends.
fn topological_order(members: &[usize], preds: &[Vec<usize>]) -> Vec<usize> {
    let n = preds.len();
    let mut waiting_on = vec![0usize; n];
    let mut dependants = vec![Vec::new(); n];
    for &v in members {
        waiting_on[v] = preds[v].len();
        for &u in &preds[v] {
            dependants[u].push(v);
        }
    }
    let mut ready: BTreeSet<usize> = members.iter().copied().filter(|&v| waiting_on[v] == 0).collect();
    let mut placed = vec![false; n];
    let mut order = Vec::with_capacity(members.len());
    while let Some(v) = ready.pop_first().or_else(|| members.iter().copied().find(|&m| !placed[m])) {
        placed[v] = true;
        order.push(v);
        for &w in &dependants[v] {
            if !placed[w] {
                waiting_on[w] -= 1;
                if waiting_on[w] == 0 {
                    ready.insert(w);
                }
            }
        }
    }
    order
}

/// Barycenter heuristic: a node goes at the mean position of its neighbours in earlier
/// columns. A downward sweep alone never moves the first column, so an upward sweep (by
/// dependants) sits between two downward ones to let roots follow their dependants.
fn order_columns(columns: &mut [Vec<usize>], layer: &[Option<usize>], preds: &[Vec<usize>]) {
    let n = layer.len();
    let mut earlier = vec![Vec::new(); n];
    let mut later = vec![Vec::new(); n];
    for (v, vp) in preds.iter().enumerate() {
        for &u in vp {
            if let (Some(lu), Some(lv)) = (layer[u], layer[v])
                && lu < lv
            {
                earlier[v].push(u);
                later[u].push(v);
            }
        }
    }
    let mut rank = vec![0usize; n];
    for column in columns.iter() {
        for (i, &v) in column.iter().enumerate() {
            rank[v] = i;
        }
    }
    for column in columns.iter_mut().skip(1) {
        reorder(column, &earlier, &mut rank);
    }
    for column in columns.iter_mut().rev().skip(1) {
        reorder(column, &later, &mut rank);
    }
    for column in columns.iter_mut().skip(1) {
        reorder(column, &earlier, &mut rank);
    }
}

/// Sorts one column by neighbour barycenter (ties by input index); a node without
/// neighbours keeps its current position as its key.
fn reorder(column: &mut [usize], neighbours: &[Vec<usize>], rank: &mut [usize]) {
    let key = |v: usize| -> f64 {
        let around = &neighbours[v];
        if around.is_empty() {
            rank[v] as f64
        } else {
            around.iter().map(|&u| rank[u] as f64).sum::<f64>() / around.len() as f64
        }
    };
    let mut keyed: Vec<(f64, usize)> = column.iter().map(|&v| (key(v), v)).collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    for (i, (slot, (_, v))) in column.iter_mut().zip(keyed).enumerate() {
        *slot = v;
        rank[v] = i;
    }
}

fn render_decorations(layout: &Layout) -> String {
    let mut out = String::new();
    if let Some((top, bottom)) = layout.separator {
        out.push_str(&format!(
            "<line class=\"dag-separator\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>\n",
            top.x, top.y, bottom.x, bottom.y
        ));
    }
    for (at, text) in [(layout.finally_label, "finally"), (layout.compensation_label, "compensations")] {
        if let Some(at) = at {
            out.push_str(&format!("<text class=\"dag-label\" x=\"{}\" y=\"{}\">{text}</text>\n", at.x, at.y));
        }
    }
    out
}

/// A cubic curve from the right middle of `from` to the left middle of `to`, its control
/// points pulled horizontally so the curve leaves and enters level.
fn render_edge(nodes: &[Node], layout: &Layout, from: usize, to: usize) -> String {
    let (Some(a), Some(b)) = (layout.boxes.get(from), layout.boxes.get(to)) else {
        return String::new();
    };
    let (x1, y1) = (a.x + NODE_W, a.y + NODE_H / 2);
    let (x2, y2) = (b.x, b.y + NODE_H / 2);
    // At least a gap's worth, so edges running backwards (cycles, compensations) still loop
    // visibly instead of folding onto themselves.
    let pull = ((x2 - x1).abs() / 2).max(GAP_X);
    let class = match nodes.get(to).map(|n| n.lane) {
        Some(Lane::Finally) => "edge edge-finally",
        _ => "edge",
    };
    format!(
        "<path class=\"{class}\" d=\"M{x1},{y1} C{},{y1} {},{y2} {x2},{y2}\" marker-end=\"url(#dag-arrow)\"/>\n",
        x1 + pull,
        x2 - pull
    )
}

fn render_node(node: &Node, at: Point) -> String {
    let id = escape(node.id);
    let title = escape(&format!("{}\nkind: {}\nstatus: {}", node.id, node.kind, node.status));
    format!(
        concat!(
            "<g class=\"node {class}\" id=\"node-{id}\" data-step=\"{id}\"><title>{title}</title>",
            "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" rx=\"6\"/>",
            "<text class=\"dag-id\" x=\"{tx}\" y=\"{id_y}\">{label}</text>",
            "<text class=\"dag-kind\" x=\"{tx}\" y=\"{kind_y}\">{kind}</text></g>\n"
        ),
        class = escape(&status_class(node.status)),
        id = id,
        title = title,
        x = at.x,
        y = at.y,
        w = NODE_W,
        h = NODE_H,
        tx = at.x + 12,
        id_y = at.y + 20,
        kind_y = at.y + 36,
        label = escape(&truncate(node.id, ID_CHARS)),
        kind = escape(&truncate(node.kind, KIND_CHARS)),
    )
}

/// At most `max` characters, the last one an ellipsis when something was cut.
fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    text.chars().take(max.saturating_sub(1)).chain(std::iter::once('…')).collect()
}

/// Escapes text for both element content and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // XML forbids most control characters; one would make a standalone viewer reject
            // the whole file.
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node<'a>(id: &'a str, lane: Lane, needs: &[usize]) -> Node<'a> {
        Node {
            id,
            kind: "shell",
            lane,
            needs: needs.to_vec(),
            status: "pending",
        }
    }

    fn main_node<'a>(id: &'a str, needs: &[usize]) -> Node<'a> {
        node(id, Lane::Main, needs)
    }

    fn column(layout: &Layout, i: usize) -> i64 {
        (layout.boxes[i].x - MARGIN) / PITCH_X
    }

    /// The `x` of the rect drawn for step `id`, read back from the SVG.
    fn rect_x(svg: &str, id: &str) -> i64 {
        let start = svg.find(&format!("id=\"node-{id}\"")).expect("node drawn");
        let rest = &svg[start..];
        let x = &rest[rest.find("<rect x=\"").expect("rect") + 9..];
        x[..x.find('"').expect("closing quote")].parse().expect("number")
    }

    fn crossings(nodes: &[Node], layout: &Layout) -> usize {
        let edges = valid_edges(nodes);
        let mut count = 0;
        for (i, &(a, b)) in edges.iter().enumerate() {
            for &(c, d) in &edges[i + 1..] {
                let same_span = layout.boxes[a].x == layout.boxes[c].x && layout.boxes[b].x == layout.boxes[d].x;
                let (ya, yb, yc, yd) = (layout.boxes[a].y, layout.boxes[b].y, layout.boxes[c].y, layout.boxes[d].y);
                if same_span && (ya - yc) * (yb - yd) < 0 {
                    count += 1;
                }
            }
        }
        count
    }

    #[test]
    fn diamond_is_layered_by_longest_path() {
        let nodes = [
            main_node("a", &[]),
            main_node("b", &[0]),
            main_node("c", &[0]),
            main_node("d", &[1, 2]),
        ];
        let layout = layout(&nodes);
        assert_eq!([0, 1, 1, 2], [0, 1, 2, 3].map(|i| column(&layout, i)));
        assert!(layout.boxes[1].y < layout.boxes[2].y, "ties keep input order");

        let svg = render(&nodes);
        assert_eq!(rect_x(&svg, "a"), MARGIN);
        assert_eq!(rect_x(&svg, "b"), MARGIN + PITCH_X);
        assert_eq!(rect_x(&svg, "c"), MARGIN + PITCH_X);
        assert_eq!(rect_x(&svg, "d"), MARGIN + 2 * PITCH_X);
    }

    #[test]
    fn longest_path_wins_over_a_shortcut() {
        // d needs a directly and via b -> c: it goes after c, not next to b.
        let nodes = [
            main_node("a", &[]),
            main_node("b", &[0]),
            main_node("c", &[1]),
            main_node("d", &[0, 2]),
        ];
        assert_eq!(column(&layout(&nodes), 3), 3);
    }

    #[test]
    fn barycenter_ordering_removes_a_crossing() {
        // In input order c would sit above d while c's dependency b sits below d's dependency a.
        let nodes = [main_node("a", &[]), main_node("b", &[]), main_node("c", &[1]), main_node("d", &[0])];
        let layout = layout(&nodes);
        assert!(layout.boxes[3].y < layout.boxes[2].y);
        assert_eq!(crossings(&nodes, &layout), 0);
    }

    #[test]
    fn upward_sweep_reorders_roots() {
        // a needs r1 and r3, b needs r2: in input order r3 -> a crosses r2 -> b, and only
        // moving a root (r3 up next to r1) removes that.
        let nodes = [
            main_node("r1", &[]),
            main_node("r2", &[]),
            main_node("r3", &[]),
            main_node("a", &[0, 2]),
            main_node("b", &[1]),
        ];
        let layout = layout(&nodes);
        assert!(layout.boxes[2].y < layout.boxes[1].y);
        assert_eq!(crossings(&nodes, &layout), 0);
    }

    #[test]
    fn finally_columns_come_after_every_main_node() {
        let nodes = [
            node("f1", Lane::Finally, &[]),
            main_node("a", &[]),
            main_node("b", &[1]),
            node("f2", Lane::Finally, &[0, 2]),
            main_node("c", &[2]),
        ];
        let layout = layout(&nodes);
        let last_main = [1, 2, 4].iter().map(|&i| layout.boxes[i].x).max().unwrap_or(0);
        for f in [0, 3] {
            assert!(layout.boxes[f].x >= last_main + PITCH_X);
        }
        assert_eq!(
            layout.boxes[3].x,
            layout.boxes[0].x + PITCH_X,
            "finally steps are layered among themselves"
        );
        let (top, _) = layout.separator.expect("separator");
        assert!(last_main + NODE_W < top.x && top.x < layout.boxes[0].x);

        let svg = render(&nodes);
        assert!(svg.contains(">finally</text>"));
        assert_eq!(svg.matches("class=\"edge edge-finally\"").count(), 2);
        assert_eq!(svg.matches("class=\"edge\"").count(), 2);
    }

    #[test]
    fn compensations_sit_in_a_row_below_in_input_order() {
        let nodes = [
            main_node("a", &[]),
            node("undo-b", Lane::Compensation, &[]),
            main_node("b", &[0]),
            node("undo-a", Lane::Compensation, &[1]),
        ];
        let layout = layout(&nodes);
        let graph_bottom = layout.boxes[0].y.max(layout.boxes[2].y) + NODE_H;
        assert!(layout.boxes[1].y > graph_bottom);
        assert_eq!(layout.boxes[1].y, layout.boxes[3].y);
        assert!(layout.boxes[1].x < layout.boxes[3].x);
        assert!(render(&nodes).contains(">compensations</text>"));
    }

    #[test]
    fn boxes_fit_the_view_box() {
        let nodes = [
            main_node("a", &[]),
            main_node("b", &[0]),
            main_node("c", &[0]),
            node("f", Lane::Finally, &[]),
            node("u1", Lane::Compensation, &[]),
            node("u2", Lane::Compensation, &[]),
            node("u3", Lane::Compensation, &[]),
            node("u4", Lane::Compensation, &[]),
        ];
        let layout = layout(&nodes);
        for b in &layout.boxes {
            assert!(b.x >= MARGIN && b.y >= MARGIN);
            assert!(b.x + NODE_W <= layout.width - MARGIN && b.y + NODE_H <= layout.height - MARGIN);
        }
    }

    #[test]
    fn text_and_attributes_are_escaped() {
        let nodes = [Node {
            id: "<script>alert(1)</script>",
            kind: "a\"b'c&d",
            lane: Lane::Main,
            needs: vec![],
            status: "<b>",
        }];
        let svg = render(&nodes);
        assert!(!svg.contains("<script>") && !svg.contains("</script>"));
        assert!(svg.contains("id=\"node-&lt;script&gt;alert(1)&lt;/script&gt;\""));
        assert!(svg.contains("data-step=\"&lt;script&gt;alert(1)&lt;/script&gt;\""));
        assert!(svg.contains(">a&quot;b&#39;c&amp;d</text>"));
        assert!(svg.contains("status: &lt;b&gt;</title>"));
        assert_eq!(escape("a\u{0}b"), "a\u{FFFD}b");
    }

    #[test]
    fn long_ids_are_cut_but_kept_whole_in_the_tooltip() {
        let id = "restore-the-primary-database-from-snapshot";
        let svg = render(&[main_node(id, &[])]);
        assert!(svg.contains(">restore-the-primary-d…</text>"));
        assert!(svg.contains(&format!("<title>{id}\nkind: shell\nstatus: pending</title>")));
        assert_eq!(truncate("ééé", 3), "ééé");
        assert_eq!(truncate("éééé", 3), "éé…");
    }

    #[test]
    fn status_classes() {
        let cases = [
            ("pending", "st-pending"),
            ("running", "st-running"),
            ("retrying", "st-retrying"),
            ("succeeded", "st-succeeded"),
            ("failed", "st-failed"),
            ("failed (tolerated)", "st-tolerated"),
            ("skipped", "st-skipped"),
            ("Waiting For Approval", "st-waiting-for-approval"),
            ("  odd__state!! ", "st-odd-state"),
            ("\"><x", "st-x"),
            ("", "st-unknown"),
        ];
        for (status, class) in cases {
            assert_eq!(status_class(status), class, "{status:?}");
        }
    }

    #[test]
    fn cycles_and_bad_indices_do_not_panic() {
        let nodes = [
            main_node("a", &[2, 99, usize::MAX]),
            main_node("b", &[0, 0, 1]),
            main_node("c", &[1]),
            node("f", Lane::Finally, &[3]),
            node("u", Lane::Compensation, &[4, 7]),
        ];
        let layout = layout(&nodes);
        // The cycle a -> b -> c -> a is cut where it is entered first, at a.
        assert_eq!([0, 1, 2], [0, 1, 2].map(|i| column(&layout, i)));
        let svg = render(&nodes);
        assert_eq!(svg.matches("<g class=\"node").count(), 5);
        // a<-c, b<-a, c<-b, f<-f dropped, u<-u dropped, u<-7 dropped.
        assert_eq!(svg.matches("class=\"edge").count(), 3);
    }

    #[test]
    fn long_chains_and_wide_fans_lay_out() {
        let chain: Vec<Node> = (0..3000)
            .map(|i: usize| Node {
                needs: vec![i.wrapping_sub(1)],
                ..main_node("s", &[])
            })
            .collect();
        assert_eq!(column(&layout(&chain), 2999), 2999);
        let fan: Vec<Node> = (0..3000)
            .map(|_| Node {
                needs: vec![0],
                ..main_node("s", &[])
            })
            .collect();
        let fan_layout = layout(&fan);
        assert_eq!((column(&fan_layout, 0), column(&fan_layout, 2999)), (0, 1));
    }

    #[test]
    fn counts_match_nodes_and_valid_edges() {
        let nodes = [
            main_node("a", &[]),
            main_node("b", &[0]),
            main_node("c", &[0, 1]),
            node("f", Lane::Finally, &[2]),
            node("u", Lane::Compensation, &[]),
        ];
        let svg = render(&nodes);
        assert_eq!(svg.matches("<g class=\"node").count(), nodes.len());
        assert_eq!(svg.matches("class=\"edge").count(), 4);
        assert_eq!(svg.matches("<marker ").count(), 1);
    }

    #[test]
    fn output_is_deterministic() {
        let nodes = [
            main_node("a", &[]),
            main_node("b", &[]),
            main_node("c", &[1, 0]),
            main_node("d", &[0]),
            main_node("e", &[3, 2]),
            node("f", Lane::Finally, &[]),
        ];
        assert_eq!(render(&nodes), render(&nodes));
    }

    #[test]
    fn svg_element_is_complete() {
        let nodes = [main_node("a", &[]), main_node("b", &[0])];
        let svg = render(&nodes);
        let layout = layout(&nodes);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        let size = format!(
            "viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\"",
            w = layout.width,
            h = layout.height
        );
        assert!(svg.contains(&size));
        assert!(svg.contains("role=\"img\" aria-label=\"DAG of 2 steps\""));
        assert!(svg.contains("class=\"dag\""));
        assert!(svg.contains("<style>") && svg.contains("transition:fill"));
    }

    #[test]
    fn empty_input_says_so() {
        let svg = render(&[]);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert!(svg.contains(">no steps</text>"));
        assert!(!svg.contains("<g class=\"node"));
    }
}
