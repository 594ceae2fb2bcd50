//! `dropcheck`: one binary with its subcommands (`serve`, `migrate`, `user`, `demo`, …). A
//! thin shim over the library.

use clap::{Parser, Subcommand};
use dropcheck::{open_store, Application, Config};
use dropcheck_core::domain::{Email, Phone, Role};
use std::io::BufRead;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "dropcheck", version, about = "WhatsApp photo-QA and notification hub")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the dashboard, the API and the webhooks (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Load a demo project with drops in every status and generated photos.
    Demo,
    /// Copy the database (SQLite: an online, consistent snapshot) and the media into DIR, a new
    /// or empty directory; restore by starting with DROPCHECK_DATA_DIR=DIR.
    Backup { dir: std::path::PathBuf },
    /// Insert many drops quickly, for benchmarks (see docs/PERFORMANCE.md).
    BenchSeed {
        #[arg(long, default_value_t = 100_000)]
        drops: i64,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from the first line of standard input.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long, value_parser = ["admin", "reviewer"])]
        role: String,
    },
}

/// `DROPCHECK_LOG_FORMAT`: `text` (default) or `json`; anything else stops start-up.
fn init_tracing() -> Result<(), String> {
    let json = match std::env::var("DROPCHECK_LOG_FORMAT").unwrap_or_default().trim() {
        "" | "text" => false,
        "json" => true,
        other => return Err(format!("DROPCHECK_LOG_FORMAT is text or json, not '{other}'")),
    };
    dropcheck::logging::init(json);
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    if let Err(e) = init_tracing() {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(line) => {
            eprintln!("error: {line}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let leptos = leptos::config::get_configuration(None).map_err(|e| format!("Leptos configuration (LEPTOS_*): {e}"))?;
    let leptos_options = leptos.leptos_options;
    let config = Config::from_env(leptos_options.site_addr)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let started = std::time::Instant::now();
            let app = Application::build(config.clone(), leptos_options).await?;
            let users = app.store().user_count().await.map_err(|e| e.to_string())?;
            let url = config.public_url.clone();
            tracing::info!(database = app.store().backend(), data_dir = %config.data_dir.display(), startup_ms = started.elapsed().as_millis() as u64, "Dropcheck ready");
            println!("Dropcheck is running at {url}{}", if users == 0 { "/setup (create the first admin there)" } else { "" });
            app.run_until_stopped().await.map_err(|e| e.to_string())
        }
        Command::Migrate => {
            let store = open_store(&config).await?;
            println!("migrations applied ({})", store.backend());
            Ok(())
        }
        Command::User { command: UserCommand::Add { email, role } } => {
            let store = open_store(&config).await?;
            let email = Email::parse(&email).map_err(|e| e.to_string())?;
            let role = Role::parse(&role).map_err(|e| e.to_string())?;
            let mut password = String::new();
            std::io::stdin().lock().read_line(&mut password).map_err(|e| format!("reading the password from stdin: {e}"))?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            dropcheck_core::auth::check_password_policy(&password).map_err(|e| e.to_string())?;
            let hash = dropcheck_core::auth::hash_password(password).await.map_err(|e| e.to_string())?;
            let user = store.create_user(&email, &hash, role).await.map_err(|e| e.to_string())?;
            println!("added {} ({})", user.email, user.role());
            Ok(())
        }
        Command::Demo => {
            let store = open_store(&config).await?;
            let media = dropcheck_core::media::MediaStore::new(&config.data_dir);
            let r = dropcheck_core::demo::load(&store, &media).await.map_err(|e| e.to_string())?;
            println!(
                "demo project '{}': {} drops created, {} already there, {} photos",
                dropcheck_core::demo::DEMO_PROJECT,
                r.created,
                r.skipped,
                r.photos
            );
            Ok(())
        }
        Command::Backup { dir } => {
            let started = std::time::Instant::now();
            let r = dropcheck::backup::run(&config, &dir).await?;
            let secs = started.elapsed().as_secs_f64();
            match &r.contents {
                Some(c) => println!(
                    "backup in {}: the database ({} drops, {} photos; every stored file checked present) and {} files ({:.1} MB) in {secs:.1} s.\n\
                     Restore: stop the server, then start it with DROPCHECK_DATA_DIR={} (and no DATABASE_URL), or copy the directory's contents into the data directory.",
                    r.dir.display(), c.drops, c.photos, r.files_copied, r.bytes_copied as f64 / 1e6, r.dir.display()
                ),
                None => println!(
                    "backup in {}: {} files ({:.1} MB) — the media and secret.key — in {secs:.1} s.\n\
                     The database is PostgreSQL: back it up with its own tools, e.g. pg_dump --format=custom --file=dropcheck.dump \"$DATABASE_URL\", \
                     and restore with pg_restore --clean --dbname=\"$DATABASE_URL\" dropcheck.dump; then start with DROPCHECK_DATA_DIR={} and that DATABASE_URL.",
                    r.dir.display(), r.files_copied, r.bytes_copied as f64 / 1e6, r.dir.display()
                ),
            }
            Ok(())
        }
        Command::BenchSeed { drops } => {
            let store = open_store(&config).await?;
            let project = match store.project_by_name("Bench").await.map_err(|e| e.to_string())? {
                Some(p) => p,
                None => store.create_project("Bench", dropcheck_core::domain::DEFAULT_DROP_PATTERN).await.map_err(|e| e.to_string())?,
            };
            let phone = Phone::parse("+27640000001").map_err(|e| e.to_string())?;
            let t = std::time::Instant::now();
            store.seed_bulk_drops(&project, &phone, drops, 50_000_000).await.map_err(|e| e.to_string())?;
            println!("seeded {drops} drops in {:.1} s", t.elapsed().as_secs_f64());
            Ok(())
        }
    }
}
