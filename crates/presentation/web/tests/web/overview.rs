//! The overview page(s).

#[allow(unused_imports)]
use crate::support::Served;
