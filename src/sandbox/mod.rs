//! The local emulator of Telnyx, LiveKit and Twilio.
pub mod livekit;
