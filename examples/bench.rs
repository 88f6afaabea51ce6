//! Benchmarks of aws-session-daemon, in one run, printed as Markdown tables
//! with their targets:
//!
//! 1. cold start to fresh: N sections on one MFA device (`apply`), with
//!    every STS call answered after 50 ms (`latency`); against moto
//!    (`cold`); against an STS that throttles (`throttle`); where the time
//!    of N = 1 goes (`startup`);
//! 2. reaction: a profile deleted by hand, a section added, with `run` going;
//! 3. cost at rest: CPU, wake-ups and memory of an idle `run`;
//! 4. the editor: one section's refresh in a 10,000-section file;
//! 5. `credential-process` from a fresh cache (`process`), and one
//!    observation per pass: `apply` in a 10,000-profile file, passes per
//!    refresh and plans per pass of `run` (`passes`);
//! 6. the size of the daemon binary (`size`);
//! 7. peak memory under hostile input (`hostile`);
//! 8. the local credentials endpoint: latency and memory (`endpoint`);
//! 9. IAM Identity Center sections: cold start with one sign-in, and
//!    `credential-process` for an SSO section (`sso`).
//!
//! ```text
//! cargo run --release --example bench -- [--quick] [--only latency,startup,...]
//!     [--json PATH] [--no-build] [--daemon PATH] [--idle-seconds N]
//! ```
//!
//! It starts what it needs on 127.0.0.1 (moto_server, the STS fault fronts,
//! pcscd if it is not running, the virtual YubiKey on vpcd port 35963) and
//! builds the daemon and the helper programs for its own profile first
//! (`--no-build` skips that). `--quick` uses small N and short windows (CI
//! runs it through `tests/bench_quick.rs`); `--json` writes the figures.

#[path = "bench/cold.rs"]
mod cold;
#[path = "bench/editor.rs"]
mod editor;
#[path = "bench/endpoint.rs"]
mod endpoint_bench;
#[path = "bench/hostile.rs"]
mod hostile;
#[path = "bench/idle.rs"]
mod idle;
#[path = "bench/measure.rs"]
mod measure;
#[path = "bench/passes.rs"]
mod passes;
#[path = "bench/process.rs"]
mod process;
#[path = "bench/reaction.rs"]
mod reaction;
#[path = "bench/report.rs"]
mod report;
#[path = "bench/rig.rs"]
mod rig;
#[path = "bench/size.rs"]
mod size;
#[path = "bench/sso.rs"]
mod sso;
#[path = "bench/startup.rs"]
mod startup;
#[path = "bench/throttle.rs"]
mod throttle;

// The tests' helpers for the outside systems (pcscd and the virtual
// YubiKey, moto, the STS front, a temporary HOME), shared, not copied.
#[path = "../tests/support/bad_inputs.rs"]
mod bad_inputs;
#[path = "../tests/support/confined.rs"]
mod confined;
#[path = "../tests/support/daemon.rs"]
mod daemon;
#[path = "../tests/support/endpoint.rs"]
mod endpoint;
#[path = "../tests/support/example_bin.rs"]
mod example_bin;
#[path = "../tests/support/fast_sts.rs"]
mod fast_sts;
#[path = "../tests/support/moto.rs"]
mod moto;
#[path = "../tests/support/pcsc.rs"]
mod pcsc;
#[path = "../tests/support/sso_front.rs"]
mod sso_front;
#[path = "../tests/support/sts_front.rs"]
mod sts_front;
#[path = "../tests/support/tools.rs"]
mod tools;
#[path = "../tests/support/vcard.rs"]
mod vcard;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

struct Args {
    quick: bool,
    only: Vec<String>,
    json: Option<PathBuf>,
    build: bool,
    daemon: Option<PathBuf>,
    idle_seconds: Option<u64>,
}

const ALL: [&str; 13] = [
    "latency", "startup", "throttle", "cold", "reaction", "process", "hostile", "idle", "editor",
    "passes", "endpoint", "sso", "size",
];
/// The benchmarks that need the rig (pcscd, the virtual YubiKey, the fronts).
const WITH_RIG: [&str; 8] = [
    "latency", "startup", "throttle", "cold", "reaction", "process", "hostile", "idle",
];

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        quick: false,
        only: ALL.iter().map(|s| s.to_string()).collect(),
        json: None,
        build: true,
        daemon: None,
        idle_seconds: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => args.quick = true,
            "--only" => {
                args.only = value()?.split(',').map(str::to_string).collect();
                if let Some(bad) = args.only.iter().find(|o| !ALL.contains(&o.as_str())) {
                    return Err(format!(
                        "--only: unknown benchmark {bad}; known: {}",
                        ALL.join(",")
                    ));
                }
            }
            "--json" => args.json = Some(value()?.into()),
            "--no-build" => args.build = false,
            "--daemon" => args.daemon = Some(value()?.into()),
            "--idle-seconds" => {
                args.idle_seconds = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--idle-seconds: {e}"))?,
                )
            }
            "-h" | "--help" => {
                println!(
                    "usage: bench [--quick] [--only {}] [--json PATH] [--no-build] [--daemon PATH] [--idle-seconds N]",
                    ALL.join(",")
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let memory_kb = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    format!(
        "{cores} cores ({model}), {:.0} GiB, Linux {}",
        memory_kb as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == measure::SMALL_PARENT) {
        return measure::small_parent_main(&argv[2..]);
    }
    if argv.get(1).is_some_and(|a| a == endpoint_bench::CHILD) {
        return endpoint_bench::child_main(&argv[2..]);
    }
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let wants = |name: &str| args.only.iter().any(|o| o == name);
    let started = Instant::now();
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "## aws-session-daemon benchmarks ({} mode, {profile} build)\n\nMachine: {}.",
        if args.quick { "quick" } else { "full" },
        machine()
    );
    let mut figures = serde_json::Map::new();
    figures.insert("quick".into(), args.quick.into());
    figures.insert("profile".into(), profile.into());

    let mut binaries = None;
    if WITH_RIG.iter().any(|name| wants(name)) {
        let rig = rig::Rig::start(rig::Binaries::locate(args.build, args.daemon.clone())?)?;
        if wants("latency") {
            let (sizes, repeats): (&[usize], usize) = if args.quick {
                (&[1, 20], 1)
            } else {
                (&[1, 20, 200, 1000], 3)
            };
            let (table, json) = cold::run(&rig, cold::Sts::Latency, sizes, repeats)?;
            table.print();
            figures.insert("cold".into(), json);
        }
        if wants("startup") {
            let (table, json) = startup::run(&rig, if args.quick { 1 } else { 5 })?;
            table.print();
            figures.insert("startup".into(), json);
        }
        if wants("throttle") {
            let (table, json) = throttle::run(&rig, if args.quick { 50 } else { 200 })?;
            table.print();
            figures.insert("throttle".into(), json);
        }
        if wants("cold") {
            let (sizes, repeats): (&[usize], usize) = if args.quick {
                (&[1, 20], 1)
            } else {
                (&[1, 20, 200], 3)
            };
            let (table, json) = cold::run(&rig, cold::Sts::Moto, sizes, repeats)?;
            table.print();
            figures.insert("cold_moto".into(), json);
        }
        if wants("reaction") {
            let trials = if args.quick { 10 } else { 50 };
            let (table, json) = reaction::run(&rig, trials)?;
            table.print();
            figures.insert("reaction".into(), json);
        }
        if wants("process") {
            let (table, json) = process::run(&rig, if args.quick { 20 } else { 50 })?;
            table.print();
            figures.insert("process".into(), json);
        }
        if wants("hostile") {
            let (table, json) = hostile::run(&rig, !args.quick)?;
            table.print();
            figures.insert("hostile".into(), json);
        }
        if wants("idle") {
            let (settle, mut window) = if args.quick {
                (Duration::from_secs(12), Duration::from_secs(30))
            } else {
                (Duration::from_secs(15), Duration::from_secs(300))
            };
            if let Some(seconds) = args.idle_seconds {
                window = Duration::from_secs(seconds);
            }
            let (table, json) = idle::run(&rig, 200, settle, window, false)?;
            table.print();
            figures.insert("idle".into(), json);
            let (table, json) = idle::run(&rig, 200, settle, window, true)?;
            table.print();
            figures.insert("idle_endpoint".into(), json);
        }
        binaries = Some(rig.binaries.daemon.clone());
    }
    if wants("editor") {
        let (sizes, cold_sizes, repeats): (&[usize], &[usize], usize) = if args.quick {
            (&[1_000], &[20], 5)
        } else {
            (&[10_000, 1_000, 100], &[20, 200], 20)
        };
        let (table, json) = editor::run(sizes, cold_sizes, repeats)?;
        table.print();
        figures.insert("editor".into(), json);
    }
    if wants("passes") {
        let daemon = match (&binaries, &args.daemon) {
            (Some(daemon), _) | (None, Some(daemon)) => daemon.clone(),
            (None, None) => example_bin::try_daemon(args.build)?,
        };
        let (table, json) = passes::run(&daemon, args.quick)?;
        table.print();
        figures.insert("passes".into(), json);
    }
    if wants("endpoint") {
        let (table, json) = endpoint_bench::run(if args.quick { 200 } else { 1000 })?;
        table.print();
        figures.insert("endpoint".into(), json);
    }
    if wants("sso") {
        let daemon = match (&binaries, &args.daemon) {
            (Some(daemon), _) | (None, Some(daemon)) => daemon.clone(),
            (None, None) => example_bin::try_daemon(args.build)?,
        };
        let (sizes, repeats, runs): (&[usize], usize, usize) = if args.quick {
            (&[1, 20], 1, 20)
        } else {
            (&[1, 20, 200], 3, 200)
        };
        let tables = sso::run(&daemon, args.build, sizes, repeats, runs)?;
        let mut json = tables.iter().map(|(_, json)| json.clone());
        figures.insert("sso_cold".into(), json.next().unwrap_or_default());
        figures.insert("sso_process".into(), json.next().unwrap_or_default());
        for (table, _) in &tables {
            table.print();
        }
    }
    if wants("size") {
        let daemon = match binaries {
            Some(daemon) => daemon,
            None => match &args.daemon {
                Some(path) => path.clone(),
                None => example_bin::try_daemon(args.build)?,
            },
        };
        let (table, json) = size::run(&daemon)?;
        table.print();
        figures.insert("size".into(), json);
    }
    println!(
        "\n(benchmarks took {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&serde_json::Value::Object(figures))
            .map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
