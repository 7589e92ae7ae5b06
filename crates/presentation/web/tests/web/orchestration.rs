//! The orchestration page(s).

#[allow(unused_imports)]
use crate::support::Served;
