//! TODO(helper): auth plugin.
