//! What cwa owns: state/state.json, its lock, journal and audit log.
