//! Plugins and the registry the CLI builds from them.

use std::collections::BTreeMap;

use crate::issue::ConfigIssue;
use crate::stage::StageDef;

/// The stages one crate offers. A crate exports `pub fn plugin() -> Plugin`; the CLI lists the
/// plugins it links, explicitly.
#[derive(Debug)]
pub struct Plugin {
    /// The crate or feature the stages come from (`"vision"`).
    pub name: &'static str,
    /// Its stages, in the order `kindling stages` lists them.
    pub stages: Vec<StageDef>,
}

/// Every stage available to pipelines, by name.
#[derive(Debug, Default)]
pub struct Registry {
    stages: BTreeMap<&'static str, (&'static str, StageDef)>,
}

impl Registry {
    /// Builds a registry. Two plugins offering the same stage name is a programming error in
    /// the binary that lists them, reported with both plugin names.
    pub fn new(plugins: Vec<Plugin>) -> Result<Self, String> {
        let mut stages = BTreeMap::new();
        for plugin in plugins {
            for def in plugin.stages {
                if let Some((other, _)) = stages.get(def.name) {
                    return Err(format!("stage `{}` is offered by both `{other}` and `{}`", def.name, plugin.name));
                }
                stages.insert(def.name, (plugin.name, def));
            }
        }
        Ok(Self { stages })
    }

    /// The stage named `name`, or an issue suggesting the closest name.
    pub fn get(&self, name: &str) -> Result<&StageDef, ConfigIssue> {
        if let Some((_, def)) = self.stages.get(name) {
            return Ok(def);
        }
        let issue = ConfigIssue::new("", format!("unknown stage `{name}`"));
        Err(match closest(name, self.stages.keys().copied()) {
            Some(best) => issue.with_help(format!("did you mean `{best}`?")),
            None => issue.with_help("`kindling stages` lists the stages"),
        })
    }

    /// All stages with the plugin each comes from, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &StageDef)> {
        self.stages.values().map(|(plugin, def)| (*plugin, def))
    }
}

/// The candidate closest to `word`, if it is close enough to be a typo of it (for "did you
/// mean" hints).
pub fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|&(d, c)| d <= 2.max(c.len() / 3) && d < c.len().max(word.len()))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_suggestions_and_strangers_do_not() {
        let names = ["train", "evaluate", "idx_dataset"];
        assert_eq!(closest("trian", names.iter().copied()), Some("train"));
        assert_eq!(closest("idx_datset", names.iter().copied()), Some("idx_dataset"));
        assert_eq!(closest("zzz", names.iter().copied()), None);
    }
}
