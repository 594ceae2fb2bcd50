//! Prints the PDQ hash of each photo named on the command line as Meta's own tools do
//! (`hash,quality,path`), so this implementation can be held against Meta's: give
//! `--expect FILE` (lines `hash,quality,path` as `pdq-photo-hasher` prints them; the path's
//! last part is matched with the photo's file name) and each photo's distance to the expected
//! hash is printed, with a summary. PDQ's own rule: with another JPEG decoder a hash of a
//! photo of quality 80 or more is within 10 bits of the reference hash.
//!
//! `cargo run -p dropcheck-core --example pdq_hash -- [--expect FILE] PHOTO...`
//! Exits 1 when a photo of quality ≥ 80 is more than 10 bits from its expected hash.

use dropcheck_core::pdq::{pdq, Hash256};
use std::collections::HashMap;
use std::path::Path;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut expected: HashMap<String, Hash256> = HashMap::new();
    if let Some(i) = args.iter().position(|a| a == "--expect") {
        let file = args.get(i + 1).cloned().unwrap_or_else(|| die("--expect needs a file"));
        args.drain(i..=i + 1);
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| die(&format!("{file}: {e}")));
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut parts = line.trim().split(',');
            let (Some(hex), Some(_quality), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                die(&format!("{file}: not `hash,quality,path`: {line}"))
            };
            let hash = Hash256::from_hex(hex).unwrap_or_else(|| die(&format!("{file}: not a PDQ hash: {hex}")));
            expected.insert(file_name(path), hash);
        }
    }
    if args.is_empty() {
        die("usage: pdq_hash [--expect FILE] PHOTO...");
    }
    let (mut compared, mut within, mut worst, mut failed) = (0, 0, 0u32, false);
    for path in &args {
        let img = image::open(path).unwrap_or_else(|e| die(&format!("{path}: {e}")));
        let p = pdq(&img);
        match expected.get(&file_name(path)) {
            None => println!("{},{},{path}", p.hash.to_hex(), p.quality),
            Some(want) => {
                let d = p.hash.distance(want);
                compared += 1;
                within += usize::from(d <= 10);
                worst = worst.max(d);
                failed |= p.quality >= 80 && d > 10;
                println!("{},{},{path}  distance {d} to the expected hash", p.hash.to_hex(), p.quality);
            }
        }
    }
    if compared > 0 {
        println!("{within} of {compared} photos within 10 bits of the expected hash; the largest distance {worst} bits");
    }
    if failed {
        std::process::exit(1);
    }
}

fn file_name(path: &str) -> String {
    Path::new(path).file_name().map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned())
}

fn die(msg: &str) -> ! {
    eprintln!("pdq_hash: {msg}");
    std::process::exit(2)
}
