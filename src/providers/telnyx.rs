//! telnyx client.
