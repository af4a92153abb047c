//! How the dashboard marks things: colours on a colour terminal, and with `NO_COLOR` the same
//! marks through bold, reverse and the symbols every line carries anyway (★ leader, ✖ down,
//! ‖ paused, ✓ held), so nothing is said by colour alone. It decides styles only; whether
//! colour is on is the caller's to say.

use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Look {
    pub color: bool,
}

impl Look {
    fn pick(self, color: Style, plain: Style) -> Style {
        if self.color {
            color
        } else {
            plain
        }
    }

    pub fn title(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn leader(self) -> Style {
        self.pick(
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::BOLD),
        )
    }

    pub fn good(self) -> Style {
        self.pick(Style::new().fg(Color::Green), Style::new())
    }

    pub fn bad(self) -> Style {
        self.pick(Style::new().fg(Color::Red).add_modifier(Modifier::BOLD), Style::new().add_modifier(Modifier::BOLD))
    }

    pub fn warn(self) -> Style {
        self.pick(Style::new().fg(Color::Magenta), Style::new().add_modifier(Modifier::BOLD))
    }

    pub fn dim(self) -> Style {
        self.pick(Style::new().fg(Color::DarkGray), Style::new())
    }

    pub fn chart(self) -> Style {
        self.pick(Style::new().fg(Color::Cyan), Style::new())
    }

    pub fn latency(self) -> Style {
        self.pick(Style::new().fg(Color::Yellow), Style::new())
    }

    /// A fault period on the timeline: shaded characters, and a red ground in colour.
    pub fn fault(self) -> Style {
        self.pick(Style::new().fg(Color::Red).bg(Color::Rgb(60, 0, 0)), Style::new())
    }

    /// The border of a node's box.
    pub fn node_border(self, state: &str, leader: bool) -> Style {
        match (state, leader) {
            ("down", _) => self.bad(),
            ("paused", _) => self.warn(),
            (_, true) => self.leader(),
            _ => Style::new(),
        }
    }
}
