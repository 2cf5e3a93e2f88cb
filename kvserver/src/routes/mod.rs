//! One module per route family.

pub mod hits;
pub mod keys;
pub mod lookup;
pub mod ops;
pub mod values;
