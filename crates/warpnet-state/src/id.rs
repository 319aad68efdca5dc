//! User IDs: an optional leading `@`, then 1–32 characters of `[a-z0-9_]` after ASCII
//! lower-casing (`@Alice` and `alice` are one ID; ULIDs fit). Anything else is refused with a
//! message that says what is allowed, before it reaches the log.

use std::fmt;

/// Longest user ID, in characters (after the optional `@`).
pub const USER_ID_LEN_MAX: usize = 32;

/// A normalized user ID (no `@`, lower case).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(String);

/// Why an ID was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("user id is empty: use 1-{USER_ID_LEN_MAX} characters of a-z, 0-9 and _, optionally after an @")]
    Empty,
    #[error(
        "user id has {len} characters; at most {USER_ID_LEN_MAX} of a-z, 0-9 and _ are allowed"
    )]
    TooLong { len: usize },
    #[error("user id contains {found:?}; only a-z, 0-9 and _ are allowed (upper case is folded to lower case), optionally after one leading @")]
    Character { found: char },
}

impl UserId {
    /// Normalizes and checks an ID as a user typed it.
    pub fn parse(input: &str) -> Result<Self, IdError> {
        let body = input.strip_prefix('@').unwrap_or(input);
        if body.is_empty() {
            return Err(IdError::Empty);
        }
        if let Some(found) = body.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_')) {
            return Err(IdError::Character { found });
        }
        // Only ASCII is left, so characters are bytes.
        if body.len() > USER_ID_LEN_MAX {
            return Err(IdError::TooLong { len: body.len() });
        }
        Ok(Self(body.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_refuses_with_a_reason() {
        assert_eq!(UserId::parse("@Alice").unwrap().as_str(), "alice");
        assert_eq!(UserId::parse("alice").unwrap(), UserId::parse("@ALICE").unwrap());
        assert_eq!(
            UserId::parse("01HZX3K7Q9V2M4N8P6R5T0W1YB").unwrap().as_str(),
            "01hzx3k7q9v2m4n8p6r5t0w1yb"
        );
        assert_eq!(UserId::parse("@"), Err(IdError::Empty));
        assert_eq!(UserId::parse(""), Err(IdError::Empty));
        assert_eq!(UserId::parse("@@a"), Err(IdError::Character { found: '@' }));
        assert_eq!(UserId::parse("a-b"), Err(IdError::Character { found: '-' }));
        assert_eq!(
            UserId::parse("аlice"),
            Err(IdError::Character { found: 'а' }),
            "Cyrillic a is a lookalike"
        );
        assert_eq!(
            UserId::parse("ａlice"),
            Err(IdError::Character { found: 'ａ' }),
            "full-width a"
        );
        assert_eq!(UserId::parse(&"a".repeat(32)).map(|u| u.as_str().len()), Ok(32));
        assert_eq!(UserId::parse(&"a".repeat(33)), Err(IdError::TooLong { len: 33 }));
        assert!(IdError::Character { found: '-' }.to_string().contains("a-z, 0-9 and _"));
    }
}
