//! The plan compiler: YAML source in, [`CompiledPlan`] or *every* error out. No I/O.
//!
//! Passes: spanned YAML → structural check against the plan's JSON Schema (and each
//! step kind's options schema) → typed deserialization of each section that passed →
//! semantic checks (ids, needs, cycles, expressions, markers).

use super::catalog::KindCatalog;
use super::compiled::{CompiledPlan, Guard, ParamDecl, RetryPolicy, Role, Unit};
use super::diagnostic::{Diagnostic, did_you_mean};
use super::expr::{Expr, Path};
use super::model::{self, Mark, PlanDocument, StepSpec};
use super::schema_check::{Checker, Issue};
use super::template::{self, Piece};
use super::yaml::{self, Node, Pos};
use petgraph::graphmap::DiGraphMap;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

const DEFAULT_CONCURRENCY: usize = 4;

/// The plan language's JSON Schema, as published by `lifeboat plan schema` (without the
/// per-kind refinements, which [`plan_schema_for_editors`] adds).
pub fn plan_schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::to_value(schemars::schema_for!(PlanDocument)).expect("schema serializes"))
}

/// The plan schema with `with` typed per step kind (`if kind == X then with: schema(X)`).
pub fn plan_schema_for_editors(catalog: &KindCatalog) -> Value {
    let mut schema = plan_schema().clone();
    let rules: Vec<Value> = catalog
        .kinds()
        .iter()
        .map(|k| {
            serde_json::json!({
                "if": { "properties": { "kind": { "const": k.name } }, "required": ["kind"] },
                "then": { "properties": { "with": k.options_schema } },
            })
        })
        .collect();
    for def in ["StepSpec", "CompensateSpec"] {
        if let Some(obj) = schema.pointer_mut(&format!("/$defs/{def}")).and_then(Value::as_object_mut) {
            obj.insert("allOf".into(), Value::Array(rules.clone()));
        }
    }
    schema
}

/// Compiles one plan file against the step kinds of `catalog`. `file` is only used in
/// diagnostics.
pub fn compile(file: &str, source: &str, catalog: &KindCatalog) -> Result<CompiledPlan, Vec<Diagnostic>> {
    let mut cx = Compilation {
        file,
        catalog,
        diagnostics: Vec::new(),
    };
    let root = match yaml::parse(source) {
        Ok(root) => root,
        Err(e) => {
            cx.error(
                e.pos,
                None,
                e.message,
                Some("fix the YAML syntax; indentation must use spaces".into()),
            );
            return Err(cx.diagnostics);
        }
    };
    let plan = cx.compile_root(&root);
    cx.diagnostics.sort();
    cx.diagnostics.dedup();
    match plan {
        Some(plan) if cx.diagnostics.is_empty() => Ok(plan),
        _ => Err(cx.diagnostics),
    }
}

struct Compilation<'f> {
    file: &'f str,
    catalog: &'f KindCatalog,
    diagnostics: Vec<Diagnostic>,
}

/// A step whose structure was sound enough to analyse.
struct StepEntry<'n> {
    node: &'n Node,
    spec: StepSpec,
    finally: bool,
}

impl<'f> Compilation<'f> {
    fn error(&mut self, pos: Pos, step: Option<&str>, message: impl Into<String>, help: Option<String>) {
        self.diagnostics.push(Diagnostic {
            file: self.file.to_owned(),
            pos,
            step: step.map(str::to_owned),
            message: message.into(),
            help,
        });
    }

    fn issues(&mut self, issues: Vec<Issue>, step: Option<&str>) -> bool {
        let clean = issues.is_empty();
        for i in issues {
            self.error(i.pos, step, i.message, i.help);
        }
        clean
    }

    fn compile_root(&mut self, root: &Node) -> Option<CompiledPlan> {
        let schema = plan_schema();
        let checker = Checker::new(schema, false);
        if !matches!(root.value, yaml::NodeValue::Map(_)) {
            self.error(
                root.pos,
                None,
                "a plan must be a YAML mapping with apiVersion, kind, metadata and spec",
                None,
            );
            return None;
        }
        let mut clean = true;
        // Top level, field by field, so that one broken section does not hide the others.
        let top = schema.get("properties").cloned().unwrap_or_default();
        let mut issues = Vec::new();
        for (key, value) in root.entries() {
            let name = key.scalar_text();
            match top.get(&name) {
                Some(_) if name == "spec" => {}
                Some(prop) => checker.check(prop, value, &mut issues),
                None => issues.push(Issue {
                    pos: key.pos,
                    message: format!("unknown top-level field `{name}`"),
                    help: did_you_mean(&name, ["apiVersion", "kind", "metadata", "spec"])
                        .or(Some("a plan has apiVersion, kind, metadata and spec".into())),
                }),
            }
        }
        for required in ["apiVersion", "kind", "metadata", "spec"] {
            if root.get(required).is_none() {
                issues.push(Issue {
                    pos: root.pos,
                    message: format!("missing required field `{required}`"),
                    help: Some(format!("add `{required}:` at the top level")),
                });
            }
        }
        clean &= self.issues(issues, None);
        if let Some(v) = root.get("apiVersion").and_then(Node::as_str)
            && v != model::API_VERSION
        {
            self.error(
                root.get("apiVersion").unwrap().pos,
                None,
                format!("unsupported apiVersion `{v}`"),
                Some(format!("use `apiVersion: {}`", model::API_VERSION)),
            );
            clean = false;
        }
        if let Some(v) = root.get("kind").and_then(Node::as_str)
            && v != model::KIND
        {
            self.error(
                root.get("kind").unwrap().pos,
                None,
                format!("unsupported kind `{v}`"),
                Some(format!("use `kind: {}`", model::KIND)),
            );
            clean = false;
        }
        let name = root
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Node::as_str)
            .unwrap_or("")
            .to_owned();
        let spec_node = root.get("spec")?;
        self.compile_spec(spec_node, &checker, name).filter(|_| clean)
    }

    fn compile_spec(&mut self, spec: &Node, checker: &Checker, name: String) -> Option<CompiledPlan> {
        let schema = plan_schema();
        let spec_schema = schema.pointer("/$defs/Spec")?;
        let props = spec_schema.get("properties")?.as_object()?;
        if !matches!(spec.value, yaml::NodeValue::Map(_)) {
            self.error(spec.pos, None, "`spec` must be a mapping", None);
            return None;
        }
        let mut clean = true;
        let mut issues = Vec::new();
        for (key, value) in spec.entries() {
            let field = key.scalar_text();
            match props.get(&field) {
                Some(_) if field == "steps" || field == "finally" => {
                    if !matches!(value.value, yaml::NodeValue::Seq(_)) {
                        issues.push(Issue {
                            pos: value.pos,
                            message: format!("`{field}` must be a list of steps"),
                            help: None,
                        });
                    }
                }
                Some(prop) => checker.check(prop, value, &mut issues),
                None => {
                    let known: Vec<&str> = props.keys().map(String::as_str).collect();
                    issues.push(Issue {
                        pos: key.pos,
                        message: format!("unknown field `{field}` in spec"),
                        help: did_you_mean(&field, known.iter().copied()).or(Some(format!("spec fields: {}", known.join(", ")))),
                    });
                }
            }
        }
        if spec.get("steps").is_none() {
            issues.push(Issue {
                pos: spec.pos,
                message: "missing required field `steps`".into(),
                help: Some("a plan needs at least one step under `spec.steps`".into()),
            });
        }
        clean &= self.issues(issues, None);
        let params = self.params(spec);
        let entries = self.step_entries(spec);
        let plan = self.analyse(spec, entries, &params, name);
        let guards = self.guards(spec, &params, plan.as_ref().map(|p| p.units.as_slice()));
        let plan = plan.map(|plan| CompiledPlan { guards, ..plan });
        plan.filter(|_| clean)
    }

    /// Guards: probe kinds with valid options, reading only what exists when they start:
    /// params, env and run, and with `after`, the outputs of that step and its ancestors.
    /// `units` is `None` when the steps did not compile (their errors are reported).
    fn guards(&mut self, spec: &Node, params: &BTreeMap<String, ParamDecl>, units: Option<&[Unit]>) -> Vec<Guard> {
        let Some(yaml::NodeValue::Seq(items)) = spec.get("guards").map(|n| &n.value) else {
            return Vec::new();
        };
        let mut seen = BTreeSet::new();
        let mut guards = Vec::new();
        for node in items {
            // Shape errors were reported by the structural check.
            let Ok(g) = serde_json::from_value::<model::GuardSpec>(node.to_json()) else {
                continue;
            };
            let what = format!("guard {}", g.id);
            if !seen.insert(g.id.clone()) {
                self.error(
                    node.pos,
                    Some(&what),
                    format!("duplicate guard id `{}`", g.id),
                    Some("give each guard its own id".into()),
                );
            }
            let kind_pos = node.get("kind").map_or(node.pos, |n| n.pos);
            let probes = self.catalog.probe_names();
            if !probes.contains(&g.kind.as_str()) {
                self.error(
                    kind_pos,
                    Some(&what),
                    format!("guard kind `{}` is not a probe", g.kind),
                    Some(format!("guards use {}", probes.join(", "))),
                );
                continue;
            }
            let issues = kind_issues(self.catalog, node);
            self.issues(issues, Some(&what));
            // The steps whose outputs exist when the guard starts: `after` and its ancestors.
            let mut readable_steps = BTreeSet::new();
            if let (Some(after), Some(units)) = (&g.after, units) {
                let main = |u: &&Unit| u.role == crate::plan::Role::Main;
                match units.iter().position(|u| main(&u) && &u.id == after) {
                    Some(i) => {
                        let mut stack = vec![i];
                        while let Some(n) = stack.pop() {
                            if readable_steps.insert(units[n].id.clone()) {
                                stack.extend(units[n].needs.iter().copied());
                            }
                        }
                    }
                    None => {
                        let ids = units.iter().filter(main).map(|u| u.id.as_str());
                        self.error(
                            node.get("after").map_or(node.pos, |n| n.pos),
                            Some(&what),
                            format!("guard `{}` waits for unknown step `{after}`", g.id),
                            did_you_mean(after, ids).or(Some("`after` names a step of `spec.steps`".into())),
                        );
                    }
                }
            }
            let with_pos = node.get("with").map_or(node.pos, |n| n.pos);
            for (_, parsed) in template::expressions_in(&Value::Object(g.with.clone())) {
                let Ok(pieces) = parsed else {
                    self.error(with_pos, Some(&what), "invalid expression in a guard's options", None);
                    continue;
                };
                for piece in &pieces {
                    let Piece::Expr { expr, .. } = piece else { continue };
                    for path in expr.paths() {
                        let problem = match check_path_shape(path, params) {
                            Err(problem) => Some(problem),
                            Ok(None) => None,
                            // Without compiled steps the reference cannot be judged; their
                            // errors are reported already.
                            Ok(Some(_)) if units.is_none() => None,
                            Ok(Some(id)) if readable_steps.contains(id) => None,
                            Ok(Some(_)) => Some((
                                format!("guard `{}` reads `{path}`", g.id),
                                Some(match &g.after {
                                    Some(after) => format!(
                                        "this guard starts when `{after}` succeeds: it can read declared params.*, env.*, run.* and steps.<id>.outputs.* of `{after}` and the steps it needs"
                                    ),
                                    None => "guards run from the start of the run: they can read declared params.*, env.* and run.*; to read a step's outputs, start the guard with `after: <step id>`".into(),
                                }),
                            )),
                        };
                        if let Some((message, help)) = problem {
                            self.error(with_pos, Some(&what), message, help);
                        }
                    }
                }
            }
            guards.push(Guard {
                id: g.id.clone(),
                kind: g.kind.clone(),
                with: g.with.clone(),
                interval: duration(&g.interval).unwrap_or(std::time::Duration::from_secs(1)),
                failure_threshold: g.failure_threshold.unwrap_or(3),
                rollback: g.rollback,
                after: g.after.clone(),
            });
        }
        guards
    }

    fn params(&mut self, spec: &Node) -> BTreeMap<String, ParamDecl> {
        let mut out = BTreeMap::new();
        let Some(params) = spec.get("params") else { return out };
        for (key, node) in params.entries() {
            let name = key.scalar_text();
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                self.error(
                    key.pos,
                    None,
                    format!("param name `{name}` may only use letters, digits and `_`"),
                    Some("expressions read params as `params.<name>`".into()),
                );
            }
            let Ok(spec) = serde_json::from_value::<model::ParamSpec>(node.to_json()) else {
                // Its shape was reported already; keep the name so expressions can use it.
                out.insert(
                    name,
                    ParamDecl {
                        kind: Default::default(),
                        default: None,
                        required: false,
                        description: None,
                    },
                );
                continue;
            };
            if let Some(default) = &spec.default
                && let Err(e) = super::params::coerce(spec.kind, default)
            {
                self.error(
                    node.get("default").map_or(node.pos, |n| n.pos),
                    None,
                    format!("default of param `{name}`: {e}"),
                    None,
                );
            }
            out.insert(
                name,
                ParamDecl {
                    kind: spec.kind,
                    default: spec.default,
                    required: spec.required,
                    description: spec.description,
                },
            );
        }
        out
    }

    fn step_entries<'n>(&mut self, spec: &'n Node) -> (Vec<StepEntry<'n>>, BTreeSet<String>) {
        let schema = plan_schema();
        let step_schema = schema.pointer("/$defs/StepSpec").expect("StepSpec in schema");
        let checker = Checker::new(schema, false);
        let mut entries = Vec::new();
        let mut broken_ids = BTreeSet::new();
        for (list, finally) in [("steps", false), ("finally", true)] {
            for node in spec.get(list).map(Node::items).unwrap_or_default() {
                let id = node.get("id").and_then(Node::as_str).map(str::to_owned);
                let mut issues = Vec::new();
                checker.check(step_schema, node, &mut issues);
                issues.extend(kind_issues(self.catalog, node));
                if let Some(comp) = node.get("compensate") {
                    issues.extend(kind_issues(self.catalog, comp));
                }
                let clean = self.issues(issues, id.as_deref());
                let spec = match serde_json::from_value::<StepSpec>(node.to_json()) {
                    Ok(spec) if clean => spec,
                    _ => {
                        // Keep analysing what can be read, so that one typo does not hide
                        // the step's other problems; the plan will not build anyway.
                        if let Some(id) = &id {
                            broken_ids.insert(id.clone());
                        }
                        lenient_step(node)
                    }
                };
                entries.push(StepEntry { node, spec, finally });
            }
        }
        (entries, broken_ids)
    }

    fn analyse(
        &mut self,
        spec_node: &Node,
        (entries, broken): (Vec<StepEntry>, BTreeSet<String>),
        params: &BTreeMap<String, ParamDecl>,
        name: String,
    ) -> Option<CompiledPlan> {
        let main_count = entries.iter().filter(|e| !e.finally).count();
        if main_count == 0 {
            self.error(
                spec_node.get("steps").map_or(spec_node.pos, |n| n.pos),
                None,
                "the plan has no steps",
                Some("add at least one step under `spec.steps`".into()),
            );
        }
        // Ids.
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            if e.spec.id.is_empty() {
                continue; // reported by the structural check
            }
            if let Some(&first) = index.get(e.spec.id.as_str()) {
                let first_line = entries[first].node.pos.line;
                self.error(
                    e.node.get("id").map_or(e.node.pos, |n| n.pos),
                    Some(&e.spec.id),
                    format!("duplicate step id `{}` (first defined at line {first_line})", e.spec.id),
                    Some("give every step, including finally steps, a unique id".into()),
                );
            } else {
                index.insert(&e.spec.id, i);
            }
        }
        let all_ids: Vec<&str> = index.keys().copied().collect();
        // Needs.
        let mut graph: DiGraphMap<usize, ()> = DiGraphMap::new();
        for i in 0..entries.len() {
            graph.add_node(i);
        }
        for (i, e) in entries.iter().enumerate() {
            let needs_nodes = e.node.get("needs").map(Node::items).unwrap_or_default();
            for (n, need) in e.spec.needs.iter().enumerate() {
                let pos = needs_nodes.get(n).map_or(e.node.pos, |n| n.pos);
                match index.get(need.as_str()) {
                    Some(&j) if j == i => self.error(
                        pos,
                        Some(&e.spec.id),
                        format!("step `{need}` needs itself"),
                        Some("remove it from `needs`".into()),
                    ),
                    Some(&j) => {
                        if !e.finally && entries[j].finally {
                            self.error(
                                pos,
                                Some(&e.spec.id),
                                format!("step `{}` needs `{need}`, which is a finally step", e.spec.id),
                                Some("finally steps run after all steps; move the step into `finally` or drop the need".into()),
                            );
                        } else if e.finally && !entries[j].finally {
                            self.error(
                                pos,
                                Some(&e.spec.id),
                                format!("finally step `{}` needs `{need}`, a main step", e.spec.id),
                                Some("finally steps always run after every main step; `needs` may only name other finally steps".into()),
                            );
                        }
                        graph.add_edge(j, i, ());
                    }
                    None => self.error(
                        pos,
                        Some(&e.spec.id),
                        format!("`needs` names unknown step `{need}`"),
                        did_you_mean(need, all_ids.iter().copied()),
                    ),
                }
            }
        }
        self.check_clusters(spec_node, &entries);
        let cyclic = self.cycles(&graph, &entries);
        let reach = Reachability { graph: &graph };
        // Markers.
        for mark in [Mark::Disaster, Mark::Recovered] {
            let marked: Vec<usize> = (0..entries.len()).filter(|&i| entries[i].spec.mark == Some(mark)).collect();
            for &extra in marked.iter().skip(1) {
                let e = &entries[extra];
                self.error(
                    e.node.get("mark").map_or(e.node.pos, |n| n.pos),
                    Some(&e.spec.id),
                    format!("more than one step is marked `{mark:?}`",).to_lowercase(),
                    Some(format!(
                        "the RTO clock has one start and one stop; keep the mark on `{}` only",
                        entries[marked[0]].spec.id
                    )),
                );
            }
        }
        let disaster = entries.iter().position(|e| e.spec.mark == Some(Mark::Disaster));
        if let Some(rec) = entries.iter().position(|e| e.spec.mark == Some(Mark::Recovered)) {
            match disaster {
                Some(d) if !reach.is_ancestor(d, rec) => {
                    let e = &entries[rec];
                    self.error(
                        e.node.get("mark").map_or(e.node.pos, |n| n.pos),
                        Some(&e.spec.id),
                        "the step marked `recovered` does not depend on the step marked `disaster`",
                        Some(format!("add `{}` (or a step after it) to `needs`", entries[d].spec.id)),
                    );
                }
                None => {
                    let e = &entries[rec];
                    self.error(
                        e.node.get("mark").map_or(e.node.pos, |n| n.pos),
                        Some(&e.spec.id),
                        "a step is marked `recovered` but no step is marked `disaster`",
                        Some("mark the fault-injecting step with `mark: disaster`".into()),
                    );
                }
                _ => {}
            }
        }
        for e in entries.iter().filter(|e| e.finally && e.spec.mark.is_some()) {
            self.error(
                e.node.get("mark").map_or(e.node.pos, |n| n.pos),
                Some(&e.spec.id),
                "finally steps cannot carry a drill mark",
                None,
            );
        }
        for e in entries.iter().filter(|e| e.finally && e.spec.compensate.is_some()) {
            self.error(
                e.node.get("compensate").map_or(e.node.pos, |n| n.pos),
                Some(&e.spec.id),
                "finally steps are never rolled back, so they cannot have `compensate`",
                None,
            );
        }
        // Expressions.
        for (i, e) in entries.iter().enumerate() {
            let scope = ExprScope {
                entries: &entries,
                index: &index,
                reach: &reach,
                params,
                me: i,
                also_readable: None,
            };
            if let Some(when) = &e.spec.when {
                let pos = e.node.get("when").map_or(e.node.pos, |n| n.pos);
                self.check_when(when, pos, &scope);
            }
            self.check_values(&Value::Object(e.spec.with.clone()), e.node.get("with"), e.node.pos, &scope);
            if let Some(comp) = &e.spec.compensate {
                // A compensation may also read the outputs of the step it undoes.
                let comp_scope = ExprScope {
                    also_readable: Some(i),
                    ..scope
                };
                let comp_node = e.node.get("compensate");
                self.check_values(
                    &Value::Object(comp.with.clone()),
                    comp_node.and_then(|c| c.get("with")),
                    e.node.pos,
                    &comp_scope,
                );
            }
        }
        if !self.diagnostics.is_empty() || cyclic || !broken.is_empty() {
            return None;
        }
        let index: HashMap<String, usize> = index.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        Some(build(spec_node, entries, &index, params.clone(), name))
    }

    /// A step's `cluster` names one of `spec.clusters`; a Kubernetes step of a plan with
    /// several clusters must say which.
    fn check_clusters(&mut self, spec_node: &Node, entries: &[StepEntry]) {
        let names: Vec<String> = spec_node
            .get("clusters")
            .map(|c| c.entries().iter().map(|(k, _)| k.scalar_text()).collect())
            .unwrap_or_default();
        for e in entries {
            let kubernetes = self.catalog.get(&e.spec.kind).is_some_and(|k| k.cluster);
            match &e.spec.cluster {
                Some(name) if !names.contains(name) => {
                    let pos = e.node.get("cluster").map_or(e.node.pos, |n| n.pos);
                    let help = did_you_mean(name, names.iter().map(String::as_str)).or_else(|| {
                        Some(if names.is_empty() {
                            "declare it under `spec.clusters`, e.g. `dr: { kubeconfig: …, context: … }`".into()
                        } else {
                            format!("clusters of this plan: {}", names.join(", "))
                        })
                    });
                    self.error(
                        pos,
                        Some(&e.spec.id),
                        format!("step `{}` uses unknown cluster `{name}`", e.spec.id),
                        help,
                    );
                }
                Some(_) if !kubernetes => {
                    let pos = e.node.get("cluster").map_or(e.node.pos, |n| n.pos);
                    self.error(
                        pos,
                        Some(&e.spec.id),
                        format!("`{}` steps do not work on a Kubernetes cluster", e.spec.kind),
                        Some("remove `cluster:` from this step".into()),
                    );
                }
                None if kubernetes && names.len() > 1 => self.error(
                    e.node.pos,
                    Some(&e.spec.id),
                    format!("step `{}` does not say which cluster it works on", e.spec.id),
                    Some(format!("add `cluster:` with one of {}", names.join(", "))),
                ),
                _ => {}
            }
        }
    }

    fn cycles(&mut self, graph: &DiGraphMap<usize, ()>, entries: &[StepEntry]) -> bool {
        let mut found = false;
        for scc in petgraph::algo::tarjan_scc(graph) {
            if scc.len() < 2 {
                continue;
            }
            found = true;
            let members: BTreeSet<usize> = scc.iter().copied().collect();
            let start = *members.iter().min_by_key(|&&i| entries[i].node.pos).expect("non-empty");
            let path = cycle_path(graph, start, &members);
            let names: Vec<&str> = path.iter().map(|&i| entries[i].spec.id.as_str()).collect();
            let e = &entries[start];
            self.error(
                e.node.get("needs").map_or(e.node.pos, |n| n.pos),
                Some(&e.spec.id),
                format!("dependency cycle: {}", names.join(" → ")),
                Some("a plan is a DAG; remove one of these `needs` to break the cycle".into()),
            );
        }
        found
    }

    fn check_when(&mut self, when: &str, pos: Pos, scope: &ExprScope) {
        let text = if template::contains_template(when) {
            when.to_owned()
        } else {
            format!("${{{{ {when} }}}}")
        };
        match template::parse(&text) {
            Ok(pieces) => {
                if !matches!(pieces.as_slice(), [Piece::Expr { .. }]) {
                    self.error(
                        pos,
                        Some(scope.me_id()),
                        "`when` must be a single expression",
                        Some("write e.g. `when: ${{ params.region == 'eu' }}`".into()),
                    );
                }
                self.check_pieces(&pieces, pos, scope);
            }
            Err(e) => self.error(pos, Some(scope.me_id()), e.message, None),
        }
    }

    fn check_values(&mut self, value: &Value, node: Option<&Node>, fallback: Pos, scope: &ExprScope) {
        for (path, parsed) in template::expressions_in(value) {
            let segments: Vec<yaml::PathSegment> = path
                .iter()
                .map(|s| {
                    s.parse::<usize>()
                        .map_or_else(|_| yaml::PathSegment::Key(s.clone()), yaml::PathSegment::Index)
                })
                .collect();
            let pos = node.map_or(fallback, |n| n.pos_at(&segments));
            match parsed {
                Ok(pieces) => self.check_pieces(&pieces, pos, scope),
                Err(e) => self.error(
                    pos,
                    Some(scope.me_id()),
                    e.message,
                    Some("expressions look like `${{ params.name }}`".into()),
                ),
            }
        }
    }

    fn check_pieces(&mut self, pieces: &[Piece], pos: Pos, scope: &ExprScope) {
        for piece in pieces {
            if let Piece::Expr { expr, .. } = piece {
                for path in expr.paths() {
                    if let Err((message, help)) = scope.check_path(path) {
                        self.error(pos, Some(scope.me_id()), message, help);
                    }
                }
            }
        }
    }
}

/// A step read field by field, skipping fields that do not have the right shape.
fn lenient_step(node: &Node) -> StepSpec {
    fn field<T: serde::de::DeserializeOwned + Default>(node: &Node, key: &str) -> T {
        node.get(key)
            .and_then(|n| serde_json::from_value(n.to_json()).ok())
            .unwrap_or_default()
    }
    let text = |key: &str| node.get(key).and_then(Node::as_str).map(str::to_owned);
    let compensate = node.get("compensate").map(|c| model::CompensateSpec {
        kind: c.get("kind").and_then(Node::as_str).unwrap_or_default().to_owned(),
        with: field(c, "with"),
        timeout: None,
        retry: None,
    });
    StepSpec {
        id: text("id").unwrap_or_default(),
        kind: text("kind").unwrap_or_default(),
        needs: node
            .get("needs")
            .map(|n| n.items().iter().filter_map(Node::as_str).map(str::to_owned).collect())
            .unwrap_or_default(),
        with: field(node, "with"),
        when: text("when"),
        when_needs_skipped: field(node, "when_needs_skipped"),
        timeout: None,
        retry: None,
        on_failure: field(node, "on_failure"),
        compensate,
        mark: node.get("mark").and_then(|n| serde_json::from_value(n.to_json()).ok()),
        cluster: text("cluster"),
    }
}

fn kind_issues(catalog: &KindCatalog, node: &Node) -> Vec<Issue> {
    let mut issues = Vec::new();
    let Some(kind_node) = node.get("kind") else { return issues };
    let Some(kind) = kind_node.as_str() else { return issues };
    match catalog.get(kind) {
        None => issues.push(Issue {
            pos: kind_node.pos,
            message: format!("unknown step kind `{kind}`"),
            help: did_you_mean(kind, catalog.names())
                .or_else(|| Some(format!("known kinds: {}", catalog.names().collect::<Vec<_>>().join(", ")))),
        }),
        Some(k) => {
            let schema = &k.options_schema;
            let checker = Checker::new(schema, true).with_grammars(catalog.grammars());
            match node.get("with") {
                Some(with) => checker.check(schema, with, &mut issues),
                None => {
                    let empty = Node {
                        pos: node.pos,
                        value: yaml::NodeValue::Map(Vec::new()),
                    };
                    let mut missing = Vec::new();
                    checker.check(schema, &empty, &mut missing);
                    issues.extend(missing.into_iter().map(|i| Issue {
                        help: Some(format!("`{kind}` steps need a `with:` mapping: {}", i.message)),
                        ..i
                    }));
                }
            }
        }
    }
    issues
}

struct ExprScope<'a, 'n> {
    entries: &'a [StepEntry<'n>],
    index: &'a HashMap<&'a str, usize>,
    reach: &'a Reachability<'a>,
    params: &'a BTreeMap<String, ParamDecl>,
    me: usize,
    also_readable: Option<usize>,
}

/// Ancestor queries on the needs graph, answered on demand: materialising every step's
/// ancestor set costs O(n²) memory on deep plans, and only steps that read outputs ask.
struct Reachability<'g> {
    graph: &'g DiGraphMap<usize, ()>,
}

impl Reachability<'_> {
    fn is_ancestor(&self, ancestor: usize, node: usize) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            for pred in self.graph.neighbors_directed(n, petgraph::Direction::Incoming) {
                if pred == ancestor {
                    return true;
                }
                if seen.insert(pred) {
                    stack.push(pred);
                }
            }
        }
        false
    }
}

impl ExprScope<'_, '_> {
    fn me_id(&self) -> &str {
        &self.entries[self.me].spec.id
    }

    fn check_path(&self, path: &Path) -> Result<(), (String, Option<String>)> {
        let Some(id) = check_path_shape(path, self.params)? else {
            return Ok(());
        };
        let Some(&j) = self.index.get(id) else {
            let ids: Vec<&str> = self.index.keys().copied().collect();
            return Err((format!("`{path}` reads unknown step `{id}`"), did_you_mean(id, ids)));
        };
        let me = &self.entries[self.me];
        // Finally steps run after every main step, so they may read any of them.
        let readable = self.also_readable == Some(j) || (me.finally && !self.entries[j].finally) || self.reach.is_ancestor(j, self.me);
        if !readable {
            return Err((
                format!("`{path}` reads step `{id}`, which `{}` does not (transitively) need", self.me_id()),
                Some(format!("add `{id}` to `needs`, so its outputs exist before this step runs")),
            ));
        }
        Ok(())
    }
}

/// The expression paths steps and guards may write, whoever reads them: declared
/// `params.<name>`, `env.<NAME>`, `run.id|started_at|plan`, and
/// `steps.<id>.outputs.<name>…` or `steps.<id>.outcome`. For a step path the step id is
/// returned: whether that step can be read depends on who reads it.
fn check_path_shape<'p>(path: &'p Path, params: &BTreeMap<String, ParamDecl>) -> Result<Option<&'p str>, (String, Option<String>)> {
    let seg = &path.segments;
    match seg.first().map(String::as_str).unwrap_or_default() {
        "params" => match seg.get(1) {
            None => Err(("`params` needs a name: `params.<name>`".into(), None)),
            Some(name) if !params.contains_key(name) => {
                let help = did_you_mean(name, params.keys().map(String::as_str)).or(Some(format!("declare it under `spec.params.{name}`")));
                Err((format!("`{path}` reads unknown param `{name}`"), help))
            }
            Some(_) if seg.len() > 2 => Err((format!("`{path}`: a param is read whole, as `params.<name>`"), None)),
            Some(_) => Ok(None),
        },
        "env" if seg.len() == 2 => Ok(None),
        "env" => Err((
            format!("`{path}`: environment variables are read one at a time, as `env.<NAME>`"),
            None,
        )),
        "run" => match seg.get(1).map(String::as_str) {
            Some("id" | "started_at" | "plan") if seg.len() == 2 => Ok(None),
            _ => Err((
                format!("`{path}` is not a run attribute"),
                Some("available: run.id, run.started_at, run.plan".into()),
            )),
        },
        "steps" => {
            let Some(id) = seg.get(1) else {
                return Err(("`steps` needs a step id: `steps.<id>.outputs.<name>`".into(), None));
            };
            match seg.get(2).map(String::as_str) {
                Some("outputs") if seg.len() >= 4 => Ok(Some(id)),
                Some("outcome") if seg.len() == 3 => Ok(Some(id)),
                _ => Err((
                    format!("`{path}`: read a step as `steps.{id}.outputs.<name>` or `steps.{id}.outcome`"),
                    None,
                )),
            }
        }
        other => Err((
            format!("`{path}`: unknown name `{other}`"),
            did_you_mean(other, ["params", "steps", "run", "env"])
                .or(Some("expressions read params.*, steps.<id>.outputs.*, run.*, env.*".into())),
        )),
    }
}

/// A shortest cycle through `start` inside one strongly connected component.
fn cycle_path(graph: &DiGraphMap<usize, ()>, start: usize, members: &BTreeSet<usize>) -> Vec<usize> {
    let mut previous: HashMap<usize, usize> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        for next in graph.neighbors_directed(n, petgraph::Direction::Incoming) {
            if !members.contains(&next) {
                continue;
            }
            if next == start {
                // Walk back from n to start, giving the path in "needs" order.
                let mut path = vec![start, n];
                let mut cur = n;
                while let Some(&p) = previous.get(&cur) {
                    path.push(p);
                    cur = p;
                }
                path.pop();
                path.push(start);
                path.dedup();
                return path;
            }
            if next != start && !previous.contains_key(&next) {
                previous.insert(next, n);
                queue.push_back(next);
            }
        }
    }
    vec![start, start]
}

fn duration<const MIN: u64, const MAX: u64>(d: &Option<model::HumanDuration<MIN, MAX>>) -> Option<std::time::Duration> {
    d.map(|d| d.get())
}

fn retry_policy(spec: &Option<model::RetrySpec>) -> RetryPolicy {
    let default = RetryPolicy::default();
    match spec {
        None => default,
        Some(r) => RetryPolicy {
            attempts: r.attempts.max(1),
            backoff: duration(&r.backoff).unwrap_or(default.backoff),
            max_backoff: duration(&r.max_backoff).unwrap_or(default.max_backoff),
        },
    }
}

fn parse_when(when: &Option<String>) -> Option<(String, Expr)> {
    let when = when.as_ref()?;
    let text = if template::contains_template(when) {
        when.clone()
    } else {
        format!("${{{{ {when} }}}}")
    };
    match template::parse(&text).ok()?.into_iter().next()? {
        Piece::Expr { expr, source, .. } => Some((source, expr)),
        Piece::Text(_) => None,
    }
}

fn build(
    spec_node: &Node,
    entries: Vec<StepEntry>,
    index: &HashMap<String, usize>,
    params: BTreeMap<String, ParamDecl>,
    name: String,
) -> CompiledPlan {
    // Only these scalar sections are needed here; the steps were read already.
    fn section<T: serde::de::DeserializeOwned>(spec: &Node, key: &str) -> Option<T> {
        spec.get(key).and_then(|n| serde_json::from_value(n.to_json()).ok())
    }
    let description: Option<String> = section(spec_node, "description");
    let objectives: Option<model::Objectives> = section(spec_node, "objectives");
    let concurrency: Option<u32> = section(spec_node, "concurrency");
    let lock: Option<String> = section(spec_node, "lock");
    let clusters: BTreeMap<String, model::ClusterSpec> = section(spec_node, "clusters").unwrap_or_default();
    // Main steps first, then finally steps, keeping document order within each.
    let mut order: Vec<usize> = (0..entries.len()).filter(|&i| !entries[i].finally).collect();
    order.extend((0..entries.len()).filter(|&i| entries[i].finally));
    let position: HashMap<usize, usize> = order.iter().enumerate().map(|(pos, &i)| (i, pos)).collect();
    let mut units: Vec<Unit> = order
        .iter()
        .map(|&i| {
            let s = &entries[i].spec;
            Unit {
                id: s.id.clone(),
                kind: s.kind.clone(),
                role: if entries[i].finally { Role::Finally } else { Role::Main },
                needs: s
                    .needs
                    .iter()
                    .filter_map(|n| index.get(n.as_str()))
                    .map(|j| position[j])
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                with: s.with.clone(),
                when: parse_when(&s.when),
                when_needs_skipped: s.when_needs_skipped,
                timeout: duration(&s.timeout),
                retry: retry_policy(&s.retry),
                on_failure: s.on_failure,
                compensation: None,
                mark: s.mark,
                cluster: s.cluster.clone(),
            }
        })
        .collect();
    for &i in &order {
        let Some(comp) = &entries[i].spec.compensate else { continue };
        let of = position[&i];
        let comp_index = units.len();
        units.push(Unit {
            id: format!("{}.compensate", entries[i].spec.id),
            kind: comp.kind.clone(),
            role: Role::Compensation { of },
            needs: Vec::new(),
            with: comp.with.clone(),
            when: None,
            when_needs_skipped: Default::default(),
            timeout: duration(&comp.timeout),
            retry: retry_policy(&comp.retry),
            on_failure: Default::default(),
            compensation: None,
            mark: None,
            cluster: units[of].cluster.clone(),
        });
        units[of].compensation = Some(comp_index);
    }
    let by_id = units.iter().enumerate().map(|(i, u)| (u.id.clone(), i)).collect();
    CompiledPlan {
        by_id,
        name,
        description,
        rto: objectives.as_ref().and_then(|o| duration(&o.rto)),
        rpo: objectives.as_ref().and_then(|o| duration(&o.rpo)),
        max_rows_lost: objectives.as_ref().and_then(|o| o.rows_lost),
        guards: Vec::new(),
        params,
        concurrency: concurrency.map_or(DEFAULT_CONCURRENCY, |c| c as usize),
        lock,
        clusters,
        units,
    }
}
