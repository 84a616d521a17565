//! What the compiler knows about step kinds: handed to it by whoever owns the kinds (the
//! engine's `steps::catalog()`), so that the plan language does not depend on the adapters.

use serde_json::Value;

/// One step kind as the compiler sees it.
#[derive(Debug, Clone)]
pub struct KindInfo {
    pub name: &'static str,
    pub summary: &'static str,
    /// The JSON Schema of its `with` options.
    pub options_schema: Value,
    /// Whether it is a probe, usable as a guard.
    pub probe: bool,
    /// Whether it works on a Kubernetes cluster (takes a step's `cluster:`).
    pub cluster: bool,
}

/// A text option with a grammar of its own (a condition, a label matcher): its schema names
/// it under [`GRAMMAR_KEYWORD`] and the compiler checks literal values with this function.
pub type Grammar = (&'static str, fn(&str) -> Result<(), String>);

/// The schema keyword naming a text option's [`Grammar`].
pub const GRAMMAR_KEYWORD: &str = "x-lifeboat-grammar";

#[derive(Debug, Clone, Default)]
pub struct KindCatalog {
    kinds: Vec<KindInfo>,
    grammars: Vec<Grammar>,
}

impl KindCatalog {
    pub fn new(kinds: Vec<KindInfo>, grammars: Vec<Grammar>) -> KindCatalog {
        KindCatalog { kinds, grammars }
    }

    pub fn grammars(&self) -> &[Grammar] {
        &self.grammars
    }

    pub fn get(&self, name: &str) -> Option<&KindInfo> {
        self.kinds.iter().find(|k| k.name == name)
    }

    pub fn kinds(&self) -> &[KindInfo] {
        &self.kinds
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.iter().map(|k| k.name)
    }

    pub fn probe_names(&self) -> Vec<&'static str> {
        self.kinds.iter().filter(|k| k.probe).map(|k| k.name).collect()
    }
}
