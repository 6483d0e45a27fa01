//! `checker`: see ../shared/DESIGN.md (placeholder until this crate lands).
