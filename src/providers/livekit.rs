//! livekit client.
