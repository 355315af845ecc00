//! TODO(helper): heartbeat plugin.
