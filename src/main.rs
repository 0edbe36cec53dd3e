use clap::Parser;

fn main() {
    let cli = zoneagent::cli::Cli::parse();
    std::process::exit(zoneagent::cli::run(cli));
}
