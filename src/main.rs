//! The `attnviz` command line: subcommands call the library; every error is
//! printed once, on one line, with a non-zero exit.

mod cli;

use clap::Parser;

fn main() {
    attnviz::tui::mark_start();
    // candle asks for the thread count on every matmul and, unless this is set,
    // re-reads the cgroup and cpuinfo files each time.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    let args = cli::Args::parse();
    if let Err(e) = cli::run(args) {
        let msg = format!("{e:#}");
        let line = msg.split_whitespace().collect::<Vec<_>>().join(" ");
        eprintln!("attnviz: error: {line}");
        std::process::exit(1);
    }
}
