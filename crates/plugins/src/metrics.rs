//! TODO(helper): metrics plugin.
