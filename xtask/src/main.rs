//! The project's own build step (`cargo xtask …`), in place of cargo-leptos, which takes a
//! new machine 25–40 minutes to install. It does what `cargo leptos build --release --split`
//! does for this project, with the same libraries, and writes the same files to the same
//! places, so `cargo leptos watch` keeps working for those who have it:
//!
//! - the front end: `frontend` for wasm32 (profile `wasm-release`, target dir `target/front`,
//!   linked with `--emit-relocs`), split into lazily loaded route chunks by
//!   `wasm_split_cli_support`, bound by `wasm-bindgen-cli-support` (the wasm-bindgen CLI's
//!   own library), each module shrunk by `wasm-opt -Oz` (npm `binaryen`);
//! - the style sheet: Tailwind from npm (`--minify`) to `pkg/dropcheck.css`;
//! - the assets: `public/` copied into the site root;
//! - with `build`: the server (`cargo build --release -p dropcheck`), in parallel with the
//!   front end (on two cores the one fills the other's single-threaded link steps).
//!
//! Usage: `cargo xtask site` (front end, style sheet, assets) or `cargo xtask build` (the
//! site and the release server). Every step prints how long it took.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// What `Cargo.toml`'s `[[workspace.metadata.leptos]]` says (cargo-leptos reads it there).
const OUTPUT_NAME: &str = "dropcheck";
const FRONT_PACKAGE: &str = "frontend";
const SERVER_PACKAGE: &str = "dropcheck";
const WASM_PROFILE: &str = "wasm-release";
const SITE_PKG_DIR: &str = "pkg";
/// The loader of the split chunks, named as cargo-leptos names it.
const SPLIT_LINK: &str = "./__wasm_split.______________________.js";

type Result<T> = std::result::Result<T, String>;

struct Paths {
    root: PathBuf,
    target: PathBuf,
    site: PathBuf,
    pkg: PathBuf,
}

impl Paths {
    fn new() -> Result<Self> {
        let root = workspace_root()?;
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
        let site = std::env::var_os("LEPTOS_SITE_ROOT").map(PathBuf::from).unwrap_or_else(|| target.join("site"));
        let pkg = site.join(SITE_PKG_DIR);
        Ok(Paths { root, target, site, pkg })
    }

    fn front_wasm(&self) -> PathBuf {
        self.target.join("front/wasm32-unknown-unknown").join(WASM_PROFILE).join(format!("{FRONT_PACKAGE}.wasm"))
    }

    fn npm_bin(&self, name: &str) -> PathBuf {
        self.root.join("node_modules/.bin").join(name)
    }
}

/// The workspace this run is for, found at run time: `cargo run` sets `CARGO_MANIFEST_DIR`
/// (xtask's folder), else the nearest folder above the working directory with `xtask/`.
/// Never the compile-time path: with a target directory shared between clones (CI links one)
/// a binary built in one clone is reused by the next.
fn workspace_root() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) {
        if dir.join("src/main.rs").exists() {
            if let Some(root) = dir.parent() {
                return Ok(root.to_path_buf());
            }
        }
    }
    let cwd = std::env::current_dir().map_err(|e| format!("working directory: {e}"))?;
    cwd.ancestors()
        .find(|d| d.join("xtask/Cargo.toml").exists() && d.join("Cargo.toml").exists())
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} is not inside the Dropcheck workspace", cwd.display()))
}

/// The environment cargo-leptos gives both builds (Leptos reads `LEPTOS_OUTPUT_NAME` at
/// compile time to name the files its hydration script loads).
fn leptos_env(p: &Paths) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("LEPTOS_OUTPUT_NAME", OUTPUT_NAME.to_string()),
        ("LEPTOS_SITE_ROOT", p.site.display().to_string()),
        ("LEPTOS_SITE_PKG_DIR", SITE_PKG_DIR.to_string()),
        ("LEPTOS_SITE_ADDR", std::env::var("LEPTOS_SITE_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into())),
        ("LEPTOS_RELOAD_PORT", "3001".to_string()),
        ("LEPTOS_LIB_DIR", "frontend".to_string()),
        ("LEPTOS_BIN_DIR", "server".to_string()),
        ("LEPTOS_JS_MINIFY", "false".to_string()),
        ("LEPTOS_HASH_FILES", "false".to_string()),
    ])
}

fn timed<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let start = Instant::now();
    let out = f().map_err(|e| format!("{what}: {e}"))?;
    eprintln!("xtask: {what} done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(out)
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{:?} failed ({status})", cmd.get_program()))
    }
}

/// Runs a tool whose chatter only matters when it fails (wasm-opt warns about every name
/// subsection it does not know).
fn run_quiet(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{:?} failed ({}):\n{}", cmd.get_program(), out.status, String::from_utf8_lossy(&out.stderr)))
    }
}

fn cargo(p: &Paths) -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(&p.root).envs(leptos_env(p));
    c
}

fn build_server(p: &Paths) -> Result<()> {
    run(cargo(p).args(["build", "--release", "--package", SERVER_PACKAGE, "--bin", SERVER_PACKAGE, "--no-default-features"]))
}

fn build_wasm(p: &Paths) -> Result<()> {
    // Relocations let wasm-split find what each lazy route uses (as cargo-leptos --split).
    let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
    flags.push_str(" -Clink-args=--emit-relocs");
    run(cargo(p).env("RUSTFLAGS", flags.trim()).args([
        "build",
        "--package",
        FRONT_PACKAGE,
        "--lib",
        "--target-dir",
        &p.target.join("front").display().to_string(),
        "--target",
        "wasm32-unknown-unknown",
        "--no-default-features",
        "--profile",
        WASM_PROFILE,
    ]))
}

/// Removes what an earlier build wrote to the pkg directory (split chunks are named by
/// content, so old ones would pile up), and every precompressed copy: the server prefers a
/// `.br` beside a file, so a stale one would be served instead of the new build.
fn clean_pkg(p: &Paths) -> Result<()> {
    std::fs::create_dir_all(&p.pkg).map_err(|e| format!("{}: {e}", p.pkg.display()))?;
    for entry in std::fs::read_dir(&p.pkg).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let ours = [".wasm", ".js", ".json", ".br", ".gz"].iter().any(|s| name.ends_with(s));
        if path.is_file() && ours {
            std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// Splits the lazy routes out of the module; returns the main module (for wasm-bindgen) and
/// the chunks it wrote to the pkg directory.
fn split(p: &Paths) -> Result<(PathBuf, Vec<PathBuf>)> {
    let input = p.front_wasm();
    let wasm = std::fs::read(&input).map_err(|e| format!("{}: {e}", input.display()))?;
    let main_out = input.with_file_name(format!("{FRONT_PACKAGE}_split.wasm"));
    let main_module = format!("./{OUTPUT_NAME}.js");
    let mut opts = wasm_split_cli_support::Options::new(&wasm);
    opts.output_dir = &p.pkg;
    opts.main_out_path = &main_out;
    opts.main_module = &main_module;
    opts.link_name = SPLIT_LINK;
    let out = wasm_split_cli_support::transform(opts).map_err(|e| format!("{e:#}"))?;
    let manifest = serde_json::to_string_pretty(&out.prefetch_map).map_err(|e| e.to_string())?;
    std::fs::write(p.pkg.join("__wasm_split_manifest.json"), manifest).map_err(|e| e.to_string())?;
    Ok((main_out, out.split_modules))
}

fn bindgen(p: &Paths, main: &Path) -> Result<PathBuf> {
    let mut b = wasm_bindgen_cli_support::Bindgen::new();
    b.input_path(main).out_name(OUTPUT_NAME).typescript(false).keep_lld_exports(true).demangle(false);
    b.web(true).map_err(|e| format!("{e:#}"))?;
    b.generate(&p.pkg).map_err(|e| format!("{e:#}"))?;
    // Leptos' hydration script loads `<name>.wasm` (as cargo-leptos renames it).
    let bg = p.pkg.join(format!("{OUTPUT_NAME}_bg.wasm"));
    let dest = p.pkg.join(format!("{OUTPUT_NAME}.wasm"));
    std::fs::rename(&bg, &dest).map_err(|e| format!("{}: {e}", bg.display()))?;
    Ok(dest)
}

/// `wasm-opt -Oz` on every module, two at a time (the flags are cargo-leptos' defaults).
fn optimise(p: &Paths, files: &[PathBuf]) -> Result<()> {
    let wasm_opt = p.npm_bin("wasm-opt");
    if !wasm_opt.exists() {
        return Err(format!("{} is missing: run `npm ci` (scripts/setup-tools.sh does)", wasm_opt.display()));
    }
    let mut queue: Vec<&PathBuf> = files.iter().collect();
    // The largest first, so the two workers finish together.
    queue.sort_by_key(|f| std::cmp::Reverse(std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)));
    let queue = std::sync::Mutex::new(queue);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let Some(f) = queue.lock().map_err(|_| "poisoned".to_string())?.pop() else { return Ok(()) };
                        run_quiet(
                            Command::new(&wasm_opt)
                                .args(["-Oz", "--enable-bulk-memory", "--enable-nontrapping-float-to-int"])
                                .arg(f)
                                .arg("-o")
                                .arg(f),
                        )?;
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| w.join().map_err(|_| "wasm-opt worker panicked".to_string())?)
    })
}

fn style(p: &Paths) -> Result<()> {
    let tailwind = p.npm_bin("tailwindcss");
    if !tailwind.exists() {
        return Err(format!("{} is missing: run `npm ci` (scripts/setup-tools.sh does)", tailwind.display()));
    }
    std::fs::create_dir_all(&p.pkg).map_err(|e| e.to_string())?;
    run(Command::new(tailwind)
        .current_dir(&p.root)
        .args(["--input", "style/tailwind.css", "--minify", "--output"])
        .arg(p.pkg.join(format!("{OUTPUT_NAME}.css"))))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| format!("{}: {e}", src.display()))?;
        }
    }
    Ok(())
}

fn site(p: &Paths) -> Result<()> {
    timed("style sheet (Tailwind)", || style(p))?;
    timed("assets (public/)", || copy_dir(&p.root.join("public"), &p.site))?;
    timed("front end for wasm32 (cargo)", || build_wasm(p))?;
    timed("old front-end files removed", || clean_pkg(p))?;
    let (main, chunks) = timed("lazy routes split (wasm_split_cli_support)", || split(p))?;
    let main = timed("JS bindings (wasm-bindgen-cli-support)", || bindgen(p, &main))?;
    let mut modules = vec![main];
    modules.extend(chunks);
    timed(&format!("{} modules optimised (wasm-opt -Oz)", modules.len()), || optimise(p, &modules))?;
    Ok(())
}

fn main() -> ExitCode {
    let p = match Paths::new() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xtask: {e}");
            return ExitCode::FAILURE;
        }
    };
    let what = std::env::args().nth(1).unwrap_or_default();
    let start = Instant::now();
    let result = match what.as_str() {
        "site" => site(&p),
        "server" => timed("server (cargo build --release)", || build_server(&p)),
        "build" => std::thread::scope(|s| {
            let server = s.spawn(|| timed("server (cargo build --release)", || build_server(&p)));
            let front = site(&p);
            let server = server.join().unwrap_or_else(|_| Err("the server build panicked".into()));
            front.and(server)
        }),
        _ => {
            eprintln!("usage: cargo xtask site | server | build\n  site    the front end, its style sheet and assets in {}\n  server  the release server\n  build   both, in parallel", p.site.display());
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => {
            eprintln!("xtask: {what} finished in {:.1} s; site in {}", start.elapsed().as_secs_f64(), p.site.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
