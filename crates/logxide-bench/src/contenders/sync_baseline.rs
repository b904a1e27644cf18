//! `sync_baseline`: no logging library. A `Mutex<BufWriter<File>>` (8 KiB buffer) shared by
//! the threads; each record's timestamp is read before taking the lock, then the line is
//! formatted with `write!` straight into the locked `BufWriter` (a `write(2)` whenever the
//! buffer fills, by whichever caller fills it). Flushed at the end. Same line as `logxide`:
//!
//! ```text
//! {"ts":1767225600.123456,"tid":"bench.0","lvl":[1],"mt":"info","msg":"request handled","user_id":42,"latency_ms":10.5,"path":"/api/v1/items"}
//! ```

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::Path;
use std::sync::Mutex;

use crate::harness::{latency_ms, Contender, Local, MESSAGE, PATH};

/// The `sync_baseline` contender.
pub struct SyncBaseline {
    file: Mutex<BufWriter<File>>,
    failed: Mutex<Option<String>>,
}

impl Contender for SyncBaseline {
    fn setup(path: &Path) -> Result<Self, String> {
        let file = File::create(path).map_err(|e| e.to_string())?;
        Ok(SyncBaseline {
            file: Mutex::new(BufWriter::new(file)),
            failed: Mutex::new(None),
        })
    }

    #[inline]
    fn log(&self, i: u64, local: &mut Local) {
        let ts = crate::contenders::unix_now();
        let mut w = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let r = writeln!(
            w,
            r#"{{"ts":{}.{:06},"tid":"bench.{}","lvl":[1],"mt":"info","msg":"{MESSAGE}","user_id":{i},"latency_ms":{},"path":"{PATH}"}}"#,
            ts.as_secs(),
            ts.subsec_micros(),
            local.tid,
            latency_ms(i),
        );
        drop(w);
        if let Err(e) = r {
            self.failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(e.to_string());
        }
    }

    fn finish(self) -> Result<(), String> {
        if let Some(e) = self.failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        let mut w = self.file.into_inner().unwrap_or_else(|p| p.into_inner());
        w.flush().map_err(|e| e.to_string())
    }
}
