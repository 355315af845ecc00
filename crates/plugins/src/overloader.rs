//! TODO(helper): overloader plugin.
