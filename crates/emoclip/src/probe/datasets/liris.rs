//! (adapter in progress)
