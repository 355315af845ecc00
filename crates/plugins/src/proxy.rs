//! TODO(helper): proxy plugin.
