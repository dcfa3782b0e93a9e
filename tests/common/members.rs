//! Reading the `members n1=alive,n2=suspect` lines that the `partition`
//! fixture app prints every 100 ms: what each node believed, and when.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::time::Instant;

/// One printed view: member name -> state ("alive" or "suspect"; dead and
/// departed members are not listed).
pub type View = BTreeMap<String, String>;

/// The view in one stdout line, `None` for other lines.
pub fn parse(line: &str) -> Option<View> {
    let rest = line.strip_prefix("members ")?;
    rest.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map(|(n, s)| (n.to_owned(), s.to_owned())))
        .collect()
}

/// The views that arrived in `[from, to)`, in order.
pub fn views(lines: &[(Instant, String)], from: Instant, to: Option<Instant>) -> Vec<View> {
    lines.iter().filter(|(t, _)| *t >= from && to.is_none_or(|to| *t < to)).filter_map(|(_, l)| parse(l)).collect()
}

/// The last view that arrived at or after `since`.
pub fn last_view(lines: &[(Instant, String)], since: Instant) -> Option<View> {
    lines.iter().rev().take_while(|(t, _)| *t >= since).find_map(|(_, l)| parse(l))
}

/// The states `name` went through in `views` ("absent" when not listed),
/// with repeats collapsed: e.g. `["alive", "suspect", "absent"]`.
pub fn history<'a>(views: &'a [View], name: &str) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for v in views {
        let s = v.get(name).map_or("absent", String::as_str);
        if out.last() != Some(&s) {
            out.push(s);
        }
    }
    out
}

/// Whether `view` lists exactly `names`, all alive.
pub fn all_alive(view: &View, names: &[&str]) -> bool {
    view.len() == names.len() && names.iter().all(|n| view.get(*n).is_some_and(|s| s == "alive"))
}
