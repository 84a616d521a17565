//! Drawing a plan's DAG as Mermaid, Graphviz dot or indented text.

use super::compiled::{CompiledPlan, Role};
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    Mermaid,
    Dot,
    Text,
}

pub fn render(plan: &CompiledPlan, format: GraphFormat) -> String {
    match format {
        GraphFormat::Mermaid => mermaid(plan),
        GraphFormat::Dot => dot(plan),
        GraphFormat::Text => text(plan),
    }
}

fn node_id(id: &str) -> String {
    id.replace(['-', '.'], "_")
}

fn mermaid(plan: &CompiledPlan) -> String {
    let mut out = String::from("flowchart TD\n");
    for unit in plan.units.iter().filter(|u| u.role == Role::Main) {
        let _ = writeln!(out, "  {}[\"{}<br/><small>{}</small>\"]", node_id(&unit.id), unit.id, unit.kind);
    }
    let finally: Vec<_> = plan.units.iter().filter(|u| u.role == Role::Finally).collect();
    if !finally.is_empty() {
        out.push_str("  subgraph finally\n");
        for unit in &finally {
            let _ = writeln!(out, "    {}[\"{}<br/><small>{}</small>\"]", node_id(&unit.id), unit.id, unit.kind);
        }
        out.push_str("  end\n");
    }
    for unit in &plan.units {
        for &need in &unit.needs {
            let _ = writeln!(out, "  {} --> {}", node_id(&plan.units[need].id), node_id(&unit.id));
        }
        if let Some(c) = unit.compensation {
            let _ = writeln!(
                out,
                "  {}[\"{}<br/><small>{}</small>\"]",
                node_id(&plan.units[c].id),
                plan.units[c].id,
                plan.units[c].kind
            );
            let _ = writeln!(out, "  {} -. compensate .-> {}", node_id(&unit.id), node_id(&plan.units[c].id));
        }
    }
    out
}

fn dot(plan: &CompiledPlan) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\"];\n",
        plan.name
    );
    for unit in &plan.units {
        let style = match unit.role {
            Role::Main => "",
            Role::Finally => ", style=dashed",
            Role::Compensation { .. } => ", style=dotted",
        };
        let _ = writeln!(out, "  \"{}\" [label=\"{}\\n({})\"{style}];", unit.id, unit.id, unit.kind);
    }
    for unit in &plan.units {
        for &need in &unit.needs {
            let _ = writeln!(out, "  \"{}\" -> \"{}\";", plan.units[need].id, unit.id);
        }
        if let Some(c) = unit.compensation {
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\" [style=dotted, label=\"compensate\"];",
                unit.id, plan.units[c].id
            );
        }
    }
    out.push_str("}\n");
    out
}

/// Steps grouped into waves: wave n holds the steps whose longest chain of needs is n.
pub fn waves(plan: &CompiledPlan, role: Role) -> Vec<Vec<usize>> {
    let mut depth = vec![0usize; plan.units.len()];
    let members: Vec<usize> = (0..plan.units.len()).filter(|&i| plan.units[i].role == role).collect();
    // Units are in an order where needs may come later in the document, so iterate to a
    // fixed point; the plan is acyclic, so this terminates within len rounds.
    for _ in 0..members.len() {
        let mut changed = false;
        for &i in &members {
            let d = plan.units[i].needs.iter().map(|&n| depth[n] + 1).max().unwrap_or(0);
            if d != depth[i] {
                depth[i] = d;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let max = members.iter().map(|&i| depth[i]).max().unwrap_or(0);
    let mut out = vec![Vec::new(); if members.is_empty() { 0 } else { max + 1 }];
    for &i in &members {
        out[depth[i]].push(i);
    }
    out
}

fn text(plan: &CompiledPlan) -> String {
    let mut out = format!("plan {}\n", plan.name);
    for (role, title) in [(Role::Main, "steps"), (Role::Finally, "finally")] {
        let waves = waves(plan, role);
        if waves.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{title}:");
        for (n, wave) in waves.iter().enumerate() {
            let _ = writeln!(out, "  wave {}:", n + 1);
            for &i in wave {
                let u = &plan.units[i];
                let needs: Vec<&str> = u.needs.iter().map(|&n| plan.units[n].id.as_str()).collect();
                let after = if needs.is_empty() {
                    String::new()
                } else {
                    format!("  ← {}", needs.join(", "))
                };
                let comp = u
                    .compensation
                    .map(|c| format!("  (compensate: {})", plan.units[c].kind))
                    .unwrap_or_default();
                let _ = writeln!(out, "    {} [{}]{after}{comp}", u.id, u.kind);
            }
        }
    }
    out
}
