//! The `attnviz` command line: subcommands call the library; every error is
//! printed once, on one line, with a non-zero exit.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Args::parse();
    if let Err(e) = cli::run(args) {
        let msg = format!("{e:#}");
        let line = msg.split_whitespace().collect::<Vec<_>>().join(" ");
        eprintln!("attnviz: error: {line}");
        std::process::exit(1);
    }
}
