//! The `litmus.*` step kinds: LitmusChaos experiments on the step's cluster, judged by their
//! ChaosResults, through `crate::chaos::litmus`.

pub mod experiment;
