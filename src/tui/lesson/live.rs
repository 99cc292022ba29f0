//! The live models behind a step: an inner explorer `App` whose panes are
//! numbered from `base` in the run loop, so a step that changes models gets
//! fresh pane ids and late reports from the old workers are dropped.

use crate::tui::app::{App, Command, GenSettings};
use crate::tui::theme::Theme;
use crate::tui::worker::{Job, Message};

/// Tokens each live panel generates after its prompt.
pub const NEW_TOKENS: usize = 8;

pub struct Live {
    /// Run-loop pane id of `app.panes[0]`.
    pub base: usize,
    pub sources: Vec<String>,
    pub prompt: String,
    pub app: App,
}

impl Live {
    pub fn new(base: usize, sources: Vec<String>, prompt: &str, theme: &Theme) -> Self {
        let settings = GenSettings { max_new_tokens: NEW_TOKENS, ..GenSettings::default() };
        let app = App::new(&sources, prompt, false, settings, theme.clone());
        Self { base, sources, prompt: prompt.to_string(), app }
    }

    /// Workers for every pane.
    pub fn spawn(&self) -> Vec<Command> {
        self.sources.iter().enumerate().map(|(i, s)| Command::Spawn(self.base + i, s.clone())).collect()
    }

    /// Stop every pane's run.
    pub fn cancel(&self) -> Vec<Command> {
        (0..self.sources.len()).map(|i| Command::Job(self.base + i, Job::Cancel)).collect()
    }

    /// This set's index of run-loop pane `pane`.
    pub fn local(&self, pane: usize) -> Option<usize> {
        pane.checked_sub(self.base).filter(|&i| i < self.sources.len())
    }

    /// A worker's report, if it is one of ours; commands in run-loop ids.
    pub fn report(&mut self, m: Message) -> Vec<Command> {
        let Some(i) = self.local(m.pane) else { return vec![] };
        let base = self.base;
        self.app
            .report(Message { pane: i, report: m.report })
            .into_iter()
            .map(|c| match c {
                Command::Job(j, job) => Command::Job(j + base, job),
                other => other,
            })
            .collect()
    }

    /// Something still loads or generates.
    pub fn busy(&self) -> bool {
        self.app
            .panes
            .iter()
            .any(|p| p.is_running() || p.info.is_none() && !matches!(p.status, crate::tui::app::PaneStatus::Failed(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::PaneStatus;
    use crate::tui::data::ModelInfo;
    use crate::tui::theme::{ColorMap, ColorMode};
    use crate::tui::worker::Report;

    fn info(source: &str) -> ModelInfo {
        ModelInfo::for_test(source, 2, 4, 2, 8)
    }

    #[test]
    fn ids_are_offset_and_foreign_reports_dropped() {
        let theme = Theme::new(ColorMode::None, ColorMap::Viridis);
        let mut l = Live::new(5, vec!["tiny-mha".into(), "tiny-gqa".into()], "hi", &theme);
        assert!(matches!(l.spawn()[..], [Command::Spawn(5, _), Command::Spawn(6, _)]));
        assert!(matches!(l.cancel()[..], [Command::Job(5, Job::Cancel), Command::Job(6, Job::Cancel)]));
        assert!(l.report(Message { pane: 4, report: Report::Loaded(info("x")) }).is_empty());
        let cmds = l.report(Message { pane: 6, report: Report::Loaded(info("tiny-gqa")) });
        assert!(matches!(cmds[..], [Command::Job(6, Job::Generate(_))]), "{cmds:?}");
        assert_eq!(l.app.panes[1].status, PaneStatus::Generating);
        assert!(l.busy());
    }
}
