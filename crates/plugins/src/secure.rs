//! TODO(helper): secure plugin.
