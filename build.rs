//! Embeds every file under `templates/` into the binary, so an installed specgen needs no
//! template directory beside it. The list is sorted, so the build is reproducible.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new("templates");
    println!("cargo:rerun-if-changed=templates");
    let mut files = Vec::new();
    collect(root, &mut files);
    files.sort();

    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut code = fs::File::create(out.join("templates.rs")).expect("create templates.rs");
    writeln!(code, "/// Every template file, by path relative to `templates/`.").unwrap();
    writeln!(code, "pub static TEMPLATE_FILES: &[(&str, &[u8])] = &[").unwrap();
    for file in &files {
        let rel = file.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
        let abs = fs::canonicalize(file).expect("template path");
        println!("cargo:rerun-if-changed={}", file.display());
        writeln!(code, "    ({rel:?}, include_bytes!({:?})),", abs.display().to_string()).unwrap();
    }
    writeln!(code, "];").unwrap();
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // Build output and editor droppings are not templates.
        if name == "target" || name.starts_with('.') && name != ".gitignore" {
            continue;
        }
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
