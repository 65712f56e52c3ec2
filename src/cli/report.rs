//! How a failed command is reported on stderr: the error, then the causes that add something.
//!
//! The top-level message usually quotes its cause already (tapgate's errors say what went
//! wrong and what to do), so a cause is printed only when its text is not already shown. A
//! gRPC status is judged by its message, which is all that is new in it (its `Display` adds the
//! code's description and the transport error again), and tonic's transport error, which
//! displays only its kind ("transport error"), gives way to its source. This module only
//! formats; it must not decide what an error means.

use std::error::Error;

/// The lines to print for `error`: its message first, then each cause not already shown.
pub fn error_lines(error: &(dyn Error + 'static)) -> Vec<String> {
    let mut lines = vec![error.to_string()];
    let mut shown = lines[0].clone();
    let mut next = error.source();
    while let Some(cause) = next {
        next = cause.source();
        if is_bare_wrapper(cause) {
            continue;
        }
        let (essence, line) = describe(cause);
        if essence.trim().is_empty() || shown.contains(essence.trim()) {
            continue;
        }
        shown.push('\n');
        shown.push_str(&line);
        lines.push(line);
    }
    lines
}

/// What is new in a cause (to compare with what is shown) and the line to print for it.
fn describe(cause: &(dyn Error + 'static)) -> (String, String) {
    #[cfg(feature = "node")]
    if let Some(status) = cause.downcast_ref::<tonic::Status>() {
        let message = status.message().to_owned();
        let line = format!("{:?}: {message}", status.code());
        return (message, line);
    }
    let text = cause.to_string();
    (text.clone(), text)
}

/// An error that only names its kind and carries the detail in its source.
fn is_bare_wrapper(cause: &(dyn Error + 'static)) -> bool {
    #[cfg(feature = "node")]
    if cause.downcast_ref::<tonic::transport::Error>().is_some() {
        return cause.source().is_some();
    }
    let _ = cause;
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Layer {
        text: &'static str,
        #[source]
        source: Option<Box<dyn Error + Send + Sync>>,
    }

    /// `texts[0]` caused by `texts[1]` caused by …
    fn chain(texts: &[&'static str]) -> Layer {
        let (last, outer) = texts.split_last().unwrap();
        let mut layer = Layer {
            text: last,
            source: None,
        };
        for text in outer.iter().rev() {
            layer = Layer {
                text,
                source: Some(Box::new(layer)),
            };
        }
        layer
    }

    #[test]
    fn causes_already_quoted_are_skipped() {
        let e = chain(&["top", "a new detail", "a new"]);
        assert_eq!(error_lines(&e), ["top", "a new detail"]);
    }

    #[cfg(feature = "node")]
    #[test]
    fn a_grpc_status_is_not_repeated() {
        use crate::lightning::error::BackendError;
        let status = tonic::Status::invalid_argument("simnet invoices need an amount");
        let e = BackendError::from_status("AddInvoice", status);
        // Before: "  caused by: code: 'Client specified an invalid argument', message: …".
        assert_eq!(error_lines(&e).len(), 1, "{:?}", error_lines(&e));
        // A status whose message is new is shown, once, as code and message.
        let e = Layer {
            text: "top",
            source: Some(Box::new(tonic::Status::unavailable("node is down"))),
        };
        assert_eq!(error_lines(&e), ["top", "Unavailable: node is down"]);
    }
}
