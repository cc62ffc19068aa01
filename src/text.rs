//! Words for what reports count: `1 statement`, `2 statements`,
//! `1 policy`, `3 policies` — so no report prints "1 statements".

/// `n` and the noun, singular for one: `count(1, "row")` → `1 row`,
/// `count(2, "policy")` → `2 policies`.
pub fn count(n: impl Number, noun: &str) -> String {
    let n = n.value();
    format!("{n} {}", plural(noun, n))
}

/// A count of something (the integer types counts come in).
pub trait Number: Copy {
    /// The count as the widest integer type.
    fn value(self) -> i128;
}

macro_rules! number {
    ($($t:ty),*) => {$(
        impl Number for $t {
            fn value(self) -> i128 {
                self as i128
            }
        }
    )*};
}
number!(u8, u16, u32, u64, u128, usize, i32, i64, i128);

/// The noun for `n` of it: `row` → `rows`, `policy` → `policies`,
/// `index` → `indexes`; a word that already ends in `s` stays as it is.
pub fn plural(noun: &str, n: impl Number) -> String {
    if n.value() == 1 || noun.ends_with('s') {
        noun.to_string()
    } else if let Some(stem) = noun
        .strip_suffix('y')
        .filter(|s| !s.ends_with(['a', 'e', 'o', 'u']))
    {
        format!("{stem}ies")
    } else if noun.ends_with('x') || noun.ends_with("ch") || noun.ends_with("sh") {
        format!("{noun}es")
    } else {
        format!("{noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_singular_and_the_rest_plural() {
        assert_eq!(count(1u32, "statement"), "1 statement");
        assert_eq!(count(0u32, "statement"), "0 statements");
        assert_eq!(count(20usize, "statement"), "20 statements");
        assert_eq!(count(1u64, "ledger row"), "1 ledger row");
        assert_eq!(count(3u8, "policy"), "3 policies");
        assert_eq!(count(2u8, "index"), "2 indexes");
        assert_eq!(count(2u8, "key"), "2 keys");
        assert_eq!(plural("rls", 2u8), "rls");
    }
}
