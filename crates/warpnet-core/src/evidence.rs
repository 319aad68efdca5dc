//! Equivocation evidence (E1): two different signed statements by one member for one round.
//! The types live in `warpnet_types::evidence`, since membership changes carry them too.

pub use warpnet_types::evidence::{Equivocation, Statement};
