//! A file that rotates by size and keeps the three newest rotated files, gzip-compressed on a
//! background thread; then the directory's listing.
//!
//! ```text
//! cargo run -p logxide --example rotation
//! ```

#[macro_use]
mod common;

fn main() -> std::process::ExitCode {
    common::run(example)
}

fn example() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join("logxide-rotation");
    let _ = std::fs::remove_dir_all(&dir);
    let guard = logxide::LoggerBuilder::new()
        .target(dir.join("app.log"))
        .set("rotate_size", "64KiB")?
        .set("keep", "3")?
        .set("compress", "gzip")?
        .init()?;
    for i in 0..5_000 {
        logxide::info!("request handled", i, path = "/api/v1/items");
    }
    drop(guard); // drains, then waits for the compression thread
    let mut names: Vec<_> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    say!("{}:", dir.display());
    for name in names {
        let len = std::fs::metadata(dir.join(&name))?.len();
        say!("  {name:<40} {len:>8} bytes");
    }
    Ok(())
}
