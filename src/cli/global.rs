//! The options every admin command takes, wherever they are written:
//! `wippy peers list --url …` and `wippy peers --url … list` both work.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// How results are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    // Aligned columns for people.
    #[default]
    Table,
    // The node's JSON, pretty-printed, and nothing else on stdout.
    Json,
}

/// Global options of the admin commands.
#[derive(Args, Clone, Debug, Default)]
pub(crate) struct GlobalOpts {
    /// The node's admin API, http://host:port[/prefix] (overrides the context's URL).
    #[arg(long, global = true, help_heading = "Global options", value_name = "URL")]
    pub(crate) url: Option<String>,
    /// The context to use instead of the current one.
    #[arg(long, global = true, help_heading = "Global options", value_name = "NAME")]
    pub(crate) context: Option<String>,
    /// table (aligned columns) or json (the node's JSON, nothing else on stdout).
    #[arg(long, short = 'o', global = true, help_heading = "Global options", value_name = "FORMAT", value_enum, default_value_t = OutputFormat::Table)]
    pub(crate) output: OutputFormat,
    /// Print each request's method, URL, status and time to stderr.
    #[arg(long, global = true, help_heading = "Global options")]
    pub(crate) debug: bool,
    /// Like --debug, plus headers and bodies (tokens and secrets redacted).
    #[arg(long, global = true, help_heading = "Global options")]
    pub(crate) trace: bool,
    /// The CLI config file [default: $WIPPY_CLI_CONFIG, else ~/.config/wippy/cli.json].
    #[arg(long = "config", global = true, help_heading = "Global options", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
}
