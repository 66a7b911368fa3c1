//! Outbound path, hub side: whether decoded commits are visible to new snapshots yet, so the
//! listener queues their marks only when a worker reading the rows will see the changes.

/// A snapshot's horizon as `ferry.snapshot_now()` reports it: its xmax and the transactions it
/// sees running, as 64-bit (epoch-qualified) ids.
pub struct Snapshot {
    pub xmax: i64,
    pub running: Vec<i64>,
}

impl Snapshot {
    /// Whether every committed transaction in `xids` (32-bit ids, as logical decoding reports
    /// them) is visible: below xmax and not running. A decoded id is at most xmax's 32-bit
    /// part, so it belongs to xmax's epoch, or to the one before when it is above that part.
    pub fn sees_all(&self, xids: &[u32]) -> bool {
        let epoch = self.xmax >> 32;
        let low = self.xmax & 0xffff_ffff;
        xids.iter().all(|&x| {
            let x = i64::from(x);
            let full = if x <= low {
                (epoch << 32) + x
            } else {
                ((epoch - 1) << 32) + x
            };
            full >= 0 && full < self.xmax && !self.running.contains(&full)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Snapshot;

    #[test]
    fn a_commit_is_visible_below_xmax_and_not_running() {
        let s = Snapshot {
            xmax: 1000,
            running: vec![990],
        };
        assert!(s.sees_all(&[]));
        assert!(s.sees_all(&[5, 989, 999]));
        assert!(!s.sees_all(&[5, 990]), "still running");
        assert!(!s.sees_all(&[1000]), "at xmax: not visible yet");
    }

    #[test]
    fn ids_are_widened_with_the_epoch_of_xmax() {
        // xmax in epoch 2, low part 100: id 50 is epoch 2, id 4_000_000_000 is epoch 1
        let xmax = (2i64 << 32) + 100;
        let s = Snapshot {
            xmax,
            running: vec![(1i64 << 32) + 4_000_000_000],
        };
        assert!(s.sees_all(&[50, 99]));
        assert!(!s.sees_all(&[100]));
        assert!(
            !s.sees_all(&[4_000_000_000]),
            "running in the previous epoch"
        );
        assert!(s.sees_all(&[4_000_000_001]));
        // epoch 0: an id above xmax's part would be from before the first epoch: impossible
        assert!(!Snapshot {
            xmax: 100,
            running: vec![]
        }
        .sees_all(&[200]));
    }
}
