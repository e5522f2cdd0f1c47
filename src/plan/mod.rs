//! Computes a plan from desired, state and live.
