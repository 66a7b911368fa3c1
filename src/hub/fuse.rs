//! The mass-delete fuse, as the engine meets it (the rules live in sql/functions/fuse.sql):
//! deletions in either direction pass `ferry.fuse_allow`; past the mapping's threshold they
//! are held in `ferry.deletes_held` until an operator releases or discards them from psql.

/// Which side a held deletion happened on.
#[derive(Debug, Clone, Copy)]
pub enum Side {
    /// Rows deleted in the hub, not sent to the app.
    Hub,
    /// Records deleted in the app, not applied to the hub.
    App,
}

/// The one log line of a trip: what happened and how to proceed.
pub fn tripped(mapping: &str, side: Side, held: i64) {
    let what = match side {
        Side::Hub => "rows deleted in the hub are not deleted in the app",
        Side::App => "records deleted in the app are not deleted in the hub",
    };
    tracing::warn!(
        mapping = %mapping,
        held,
        "mass-delete fuse tripped: {what}; review them with `select * from ferry.held_deletes`, then \
         `select ferry.release_deletes('{mapping}')` to carry them out or \
         `select ferry.discard_deletes('{mapping}')` to undo them"
    );
}
