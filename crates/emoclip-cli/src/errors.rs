//! One-line error text for the user: the error and its causes joined by ": " (anyhow's `{:#}`), leaving out a
//! cause whose text the message already holds. Library errors such as `Error::Io` print their source in
//! their own text AND expose it as `source()`, so `{:#}` printed `X (os error 13): X (os error 13)`.
pub fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if part.is_empty() || text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_already_in_the_message_are_left_out() {
        let io = std::io::Error::from_raw_os_error(13);
        let e = anyhow::Error::new(emoclip::Error::io("/x/y", io)).context("reading boxes");
        let once = describe(&e);
        assert_eq!(once.matches("os error 13").count(), 1, "{once}");
        assert!(once.starts_with("reading boxes: /x/y: "), "{once}");
        // Distinct causes are all kept.
        let e = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(describe(&e), "outer: middle: inner");
    }
}
