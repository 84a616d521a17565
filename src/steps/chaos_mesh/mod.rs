//! The `chaos_mesh.*` step kinds: Chaos Mesh experiments on the step's cluster as faults
//! lifeboat owns, through `crate::chaos::chaos_mesh`.

pub mod experiment;
