//! Quantities written as a number and a unit ("3s", "256MiB"): the split
//! that every such setting reads before it scales the number by its unit.

/// `s`, trimmed, as its leading decimal number and the unit after it
/// (trimmed, possibly empty); None when it does not start with a number
/// that fits a `u64`.
pub fn number_and_unit(s: &str) -> Option<(u64, &str)> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    Some((digits.parse().ok()?, unit.trim()))
}

#[cfg(test)]
mod tests {
    use super::number_and_unit;

    #[test]
    fn a_number_and_its_unit_are_split_and_trimmed() {
        assert_eq!(number_and_unit(" 3 s "), Some((3, "s")));
        assert_eq!(number_and_unit("256MiB"), Some((256, "MiB")));
        assert_eq!(number_and_unit("42"), Some((42, "")));
        assert_eq!(number_and_unit("s"), None, "no number");
        assert_eq!(number_and_unit("-1s"), None, "a sign is not a digit");
        assert_eq!(number_and_unit("99999999999999999999s"), None, "over u64");
    }
}
