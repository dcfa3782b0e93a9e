//! What a command runs with: the global options resolved against the CLI
//! config file and the environment.
//!
//! The environment is read here and nowhere else, so the rules that use it
//! ([`Credentials::resolve`], [`CliConfig::default_path`]) stay pure.

use std::path::PathBuf;

use anyhow::Result;

use super::api::{Api, Credentials};
use super::config::{CliConfig, Context};
use super::error::usage;
use super::global::{GlobalOpts, OutputFormat};
use super::http::Http;
use super::render::Out;
use super::trace::{Log, Verbosity};
use super::url::BaseUrl;

/// The resolved global options and the loaded CLI config.
pub(crate) struct Session {
    /// The options as given.
    pub(crate) opts: GlobalOpts,
    /// Where the CLI config lives.
    pub(crate) path: PathBuf,
    /// Its contents (empty when the file does not exist yet).
    pub(crate) config: CliConfig,
}

impl Session {
    /// Finds and loads the CLI config.
    pub(crate) fn open(opts: GlobalOpts) -> Result<Session> {
        let path = CliConfig::default_path(
            opts.config.as_deref(),
            std::env::var_os("WIPPY_CLI_CONFIG"),
            std::env::var_os("HOME"),
        )
        .ok_or_else(|| usage("no CLI config path: set HOME, WIPPY_CLI_CONFIG or pass --config FILE"))?;
        let config = CliConfig::load(&path)?;
        Ok(Session { opts, path, config })
    }

    /// Table or JSON printing.
    pub(crate) fn out(&self) -> Out {
        Out { json: self.opts.output == OutputFormat::Json }
    }

    /// The request log level from `--debug`/`--trace`.
    pub(crate) fn log(&self) -> Log {
        Log(if self.opts.trace {
            Verbosity::Trace
        } else if self.opts.debug {
            Verbosity::Debug
        } else {
            Verbosity::Quiet
        })
    }

    /// The name of the context in effect (`--context`, else the current
    /// one), whether or not it exists.
    pub(crate) fn context_name(&self) -> Option<&str> {
        self.opts.context.as_deref().or(self.config.current.as_deref())
    }

    /// The context in effect; naming one that does not exist is an error.
    pub(crate) fn context(&self) -> Result<Option<(&str, &Context)>> {
        let Some(name) = self.context_name() else { return Ok(None) };
        match self.config.contexts.get_key_value(name) {
            Some((n, c)) => Ok(Some((n.as_str(), c))),
            None => Err(usage(format!("no context {name:?} in {} (see `wippy config list`)", self.path.display()))),
        }
    }

    /// The node URL: `--url`, else the context's.
    pub(crate) fn url(&self) -> Result<BaseUrl> {
        if let Some(url) = &self.opts.url {
            return BaseUrl::parse(url).map_err(usage);
        }
        let text = match self.context()? {
            Some((_, ctx)) if !ctx.url.is_empty() => ctx.url.clone(),
            Some((name, _)) => return Err(usage(format!("context {name:?} has no URL; pass --url"))),
            None => {
                return Err(usage(
                    "no node URL: pass --url http://host:port or add a context \
                     (wippy config add-context NAME --url URL)",
                ));
            }
        };
        BaseUrl::parse(&text).map_err(usage)
    }

    /// An API client for the node in effect, logging in with the
    /// environment's or the context's credential.
    pub(crate) fn api(&self) -> Result<Api> {
        let url = self.url()?;
        let ctx = self.context()?.map(|(_, c)| c);
        Ok(self.api_at(url, ctx, true))
    }

    /// An API client for `url` with `ctx`'s credential (the environment
    /// still overrides it).
    pub(crate) fn api_at(&self, url: BaseUrl, ctx: Option<&Context>, progress: bool) -> Api {
        let (id, secret) = ctx.map_or(("", ""), |c| (c.client_id.as_str(), c.client_secret.as_str()));
        let var = |k: &str| std::env::var(k).ok();
        let credentials =
            Credentials::resolve(var("WIPPY_TOKEN"), var("WIPPY_CLIENT_ID"), var("WIPPY_CLIENT_SECRET"), (id, secret));
        Api::new(Http { base: url, log: self.log(), progress }, credentials)
    }

    /// Writes the CLI config back.
    pub(crate) fn save(&self) -> Result<()> {
        self.config.save(&self.path)
    }
}
