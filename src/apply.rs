//! Carries out a plan: ordered, journaled, verified.
