//! Embeds every message catalog in `catalogs/` so translators add a language by adding a file.
use std::{env, fs, path::Path};

fn main() {
    let dir = Path::new(&env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("catalogs");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .expect("catalogs/ exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    entries.sort();
    let mut out = String::from("&[\n");
    for p in entries {
        println!("cargo:rerun-if-changed={}", p.display());
        let code = p
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8 file name");
        out.push_str(&format!(
            "    ({code:?}, include_str!({:?})),\n",
            p.display().to_string()
        ));
    }
    out.push(']');
    fs::write(
        Path::new(&env::var("OUT_DIR").expect("cargo sets it")).join("catalogs.rs"),
        out,
    )
    .expect("write OUT_DIR");
}
