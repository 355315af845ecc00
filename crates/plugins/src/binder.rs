//! TODO(helper): binder plugin.
