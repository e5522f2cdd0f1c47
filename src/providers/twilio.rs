//! twilio client.
