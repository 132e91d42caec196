//! The status line under the picture: one state for scripts and tests (`data-state`) and one
//! sentence for people.

/// Values of `#status[data-state]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusState {
    /// Nothing asked for yet, or nothing to show.
    Idle,
    /// A request is on its way or a picture is being decoded.
    Loading,
    /// The picture asked for is on show.
    Ok,
    /// The server has no such picture; its not-found picture is on show.
    NotFound,
    /// Something failed; the text says what.
    Error,
    /// The picture on show was deleted from the server.
    Deleted,
}

impl StatusState {
    pub fn as_str(self) -> &'static str {
        match self {
            StatusState::Idle => "idle",
            StatusState::Loading => "loading",
            StatusState::Ok => "ok",
            StatusState::NotFound => "not-found",
            StatusState::Error => "error",
            StatusState::Deleted => "deleted",
        }
    }
}

/// What `#status` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    pub state: StatusState,
    pub text: String,
}

impl StatusLine {
    pub fn idle(text: impl Into<String>) -> StatusLine {
        StatusLine {
            state: StatusState::Idle,
            text: text.into(),
        }
    }

    pub fn loading(title: &str) -> StatusLine {
        StatusLine {
            state: StatusState::Loading,
            text: format!("Loading {title}…"),
        }
    }

    pub fn shown(title: &str) -> StatusLine {
        StatusLine {
            state: StatusState::Ok,
            text: format!("Showing {title}."),
        }
    }

    pub fn not_found(name: &str) -> StatusLine {
        StatusLine {
            state: StatusState::NotFound,
            text: format!("No picture named \"{name}\"."),
        }
    }

    pub fn deleted(title: &str) -> StatusLine {
        StatusLine {
            state: StatusState::Deleted,
            text: format!("{title} was deleted from the server."),
        }
    }

    pub fn error(text: impl Into<String>) -> StatusLine {
        StatusLine {
            state: StatusState::Error,
            text: text.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_have_stable_names() {
        let names = [
            StatusState::Idle,
            StatusState::Loading,
            StatusState::Ok,
            StatusState::NotFound,
            StatusState::Error,
            StatusState::Deleted,
        ]
        .map(StatusState::as_str);
        assert_eq!(
            names,
            ["idle", "loading", "ok", "not-found", "error", "deleted"]
        );
    }

    #[test]
    fn sentences() {
        assert_eq!(StatusLine::loading("Car").text, "Loading Car…");
        assert_eq!(StatusLine::shown("Car").text, "Showing Car.");
        assert_eq!(
            StatusLine::not_found("unicorn").text,
            "No picture named \"unicorn\"."
        );
        assert_eq!(
            StatusLine::deleted("Car").text,
            "Car was deleted from the server."
        );
    }
}
