//! TODO(helper): ignorecase plugin.
