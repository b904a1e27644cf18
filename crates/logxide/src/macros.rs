//! The logging macros.
//!
//! ```
//! # let mem = logxide::sink::MemorySink::new();
//! # let log = logxide::Logger::builder().sink(mem.clone()).build().unwrap();
//! let user = "ada";
//! let addr = std::net::Ipv4Addr::LOCALHOST;
//! logxide::info!(logger: log, "login", user, attempt = 2, from = %addr, ok = ?Some(true));
//! # log.flush(None).unwrap();
//! # assert!(mem.lines()[0].ends_with(r#""msg":"login","user":"ada","attempt":2,"from":"127.0.0.1","ok":"Some(true)"}"#));
//! ```
//!
//! Fields are `key = value` (any [`FieldValue`](crate::logger::FieldValue)), `key = %value`
//! (its `Display`), `key = ?value` (its `Debug`), `key = serde(value)`… via
//! [`encode::serde`](crate::encode::serde), or a bare `key` for `key = key`. Keys may also be
//! string literals (`"http.status" = 200`). A key written as a raw identifier is the name
//! without `r#`: `r#type = 1` gives `"type":1`. Without `logger:` the global logger is used.
//! Give each key once: a key given twice is written twice, each copy masked if the key is
//! (see [`FieldWriter`](crate::logger::FieldWriter)).
//!
//! A message is text, never a format string: `"{}"` is written as `{}` (format it yourself
//! with `format!` for a value in it). The logger and the level are evaluated once; the
//! fields' values and a message that is not a literal (and `exception!`'s error) only
//! when the level is enabled, then once each, in the order written. They are evaluated
//! inside a closure: `?`, `.await` or `return` cannot appear in them — bind such a value to
//! a variable first.
//!
//! ```
//! # let mem = logxide::sink::MemorySink::new();
//! # let log = logxide::Logger::builder().use_env(false).sink(mem.clone()).build().unwrap();
//! let mut calls = 0;
//! let mut costly = || { calls += 1; calls };
//! log.set_level(logxide::Level::Info);
//! logxide::debug!(logger: log, "off", n = costly()); // not evaluated
//! logxide::info!(logger: log, "{} stays", n = costly());
//! assert_eq!(calls, 1);
//! # log.flush(None).unwrap();
//! # assert!(mem.lines()[0].ends_with(r#""msg":"{} stays","n":1}"#));
//! ```

/// Logs at a given [`Level`](crate::Level): `log!(Level::Note, "msg", key = value, ...)`.
#[macro_export]
macro_rules! log {
    // A literal message is checked for characters to escape at compile time.
    (logger: $logger:expr, $level:expr, $msg:literal $(, $($fields:tt)*)?) => {{
        let __logger = &$logger;
        let __level: $crate::Level = $level;
        if __logger.enabled(__level) {
            __logger.__log(__level, const { &$crate::logger::__Message::literal($msg, $crate::encode::__plain($msg)) }, |__f| {
                $crate::__fields!(__f; $($($fields)*)?);
            });
        }
    }};
    ($level:expr, $msg:literal $(, $($fields:tt)*)?) => {{
        let __level: $crate::Level = $level;
        if $crate::logger::__enabled(__level) {
            $crate::logger::__global_log_message(__level, const { &$crate::logger::__Message::literal($msg, $crate::encode::__plain($msg)) }, |__f| {
                $crate::__fields!(__f; $($($fields)*)?);
            });
        }
    }};
    (logger: $logger:expr, $level:expr, $msg:expr $(, $($fields:tt)*)?) => {{
        let __logger = &$logger;
        let __level: $crate::Level = $level;
        if __logger.enabled(__level) {
            __logger.log(__level, ::core::convert::AsRef::<str>::as_ref(&$msg), |__f| {
                $crate::__fields!(__f; $($($fields)*)?);
            });
        }
    }};
    ($level:expr, $msg:expr $(, $($fields:tt)*)?) => {{
        let __level: $crate::Level = $level;
        if $crate::logger::__enabled(__level) {
            $crate::logger::__global_log(__level, ::core::convert::AsRef::<str>::as_ref(&$msg), |__f| {
                $crate::__fields!(__f; $($($fields)*)?);
            });
        }
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __fields {
    ($f:ident; ) => {};
    ($f:ident; $key:ident = %$value:expr $(, $($rest:tt)*)?) => {
        $f.field($crate::__ident_key!($key), &$crate::encode::display(&$value));
        $crate::__fields!($f; $($($rest)*)?);
    };
    ($f:ident; $key:ident = ?$value:expr $(, $($rest:tt)*)?) => {
        $f.field($crate::__ident_key!($key), &$crate::encode::debug(&$value));
        $crate::__fields!($f; $($($rest)*)?);
    };
    ($f:ident; $key:ident = $value:expr $(, $($rest:tt)*)?) => {
        $f.field($crate::__ident_key!($key), &$value);
        $crate::__fields!($f; $($($rest)*)?);
    };
    ($f:ident; $key:literal = %$value:expr $(, $($rest:tt)*)?) => {
        $f.field($crate::__key!($key), &$crate::encode::display(&$value));
        $crate::__fields!($f; $($($rest)*)?);
    };
    ($f:ident; $key:literal = ?$value:expr $(, $($rest:tt)*)?) => {
        $f.field($crate::__key!($key), &$crate::encode::debug(&$value));
        $crate::__fields!($f; $($($rest)*)?);
    };
    ($f:ident; $key:literal = $value:expr $(, $($rest:tt)*)?) => {
        $f.field($crate::__key!($key), &$value);
        $crate::__fields!($f; $($($rest)*)?);
    };
    ($f:ident; $key:ident $(, $($rest:tt)*)?) => {
        $f.field($crate::__ident_key!($key), &$key);
        $crate::__fields!($f; $($($rest)*)?);
    };
}

/// A `&'static StaticKey` for a key literal, spelled at compile time.
#[doc(hidden)]
#[macro_export]
macro_rules! __key {
    ($name:expr) => {
        const { &$crate::encode::StaticKey::new($name, ::core::concat!(",\"", $name, "\":")) }
    };
}

/// A `&'static StaticKey` for a key written as an identifier, spelled at compile time. A raw
/// identifier (`r#type`) is the key without its `r#` (`type`): `stringify!` keeps the
/// prefix, and `concat!` cannot drop it, so the name is sliced and its spelling `,"name":`
/// built in constants — no cost at run time.
#[doc(hidden)]
#[macro_export]
macro_rules! __ident_key {
    ($key:ident) => {
        const {
            const __NAME: &::core::primitive::str =
                $crate::encode::__unraw(::core::stringify!($key));
            const __LEN: ::core::primitive::usize = __NAME.len() + 4;
            const __QUOTED: [::core::primitive::u8; __LEN] = $crate::encode::__quoted(__NAME);
            &$crate::encode::StaticKey::new(__NAME, $crate::encode::__utf8(&__QUOTED))
        }
    };
}

/// A level macro's literal message: the level's `name`, the literal `msg` (or a `concat!`
/// of literals) and the keys around them spelled whole at compile time, in both formats
/// (see `logger::__LiteralHead`).
#[doc(hidden)]
#[macro_export]
macro_rules! __literal_message {
    ($name:literal, $msg:expr) => {
        const {
            &$crate::logger::__Message::literal_with_head(
                $msg,
                // Its own constant: a temporary in an argument would not live on.
                const {
                    &$crate::logger::__LiteralHead::new(
                        $crate::encode::__plain($msg),
                        ::core::concat!(",\"mt\":\"", $name, "\",\"msg\":\"", $msg, "\""),
                        ::core::concat!(
                            ",\"message_type\":\"",
                            $name,
                            "\",\"message\":\"",
                            $msg,
                            "\""
                        ),
                    )
                },
            )
        }
    };
}

/// A level macro's call with a literal message (see [`__literal_message!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __log_literal {
    (logger: $logger:expr, $level:expr, $name:literal, $msg:expr $(, $($fields:tt)*)?) => {{
        let __logger = &$logger;
        let __level: $crate::Level = $level;
        if __logger.enabled(__level) {
            __logger.__log(__level, $crate::__literal_message!($name, $msg), |__f| {
                $crate::__fields!(__f; $($($fields)*)?);
            });
        }
    }};
    ($level:expr, $name:literal, $msg:expr $(, $($fields:tt)*)?) => {{
        let __level: $crate::Level = $level;
        if $crate::logger::__enabled(__level) {
            $crate::logger::__global_log_message(__level, $crate::__literal_message!($name, $msg), |__f| {
                $crate::__fields!(__f; $($($fields)*)?);
            });
        }
    }};
}

macro_rules! level_macro {
    ($d:tt $name:ident, $level:ident, $level_name:literal, $doc:literal) => {
        #[doc = $doc]
        #[macro_export]
        macro_rules! $name {
                            // A literal message is spelled with the record's keys at compile time.
                            (logger: $d logger:expr, $d msg:literal $d(, $d($d fields:tt)*)?) => {
                                $crate::__log_literal!(logger: $d logger, $crate::Level::$level, $level_name, $d msg $d(, $d($d fields)*)?)
                            };
                            ($d msg:literal $d(, $d($d fields:tt)*)?) => {
                                $crate::__log_literal!($crate::Level::$level, $level_name, $d msg $d(, $d($d fields)*)?)
                            };
                            (logger: $d logger:expr, $d($d rest:tt)+) => {
                                $crate::log!(logger: $d logger, $crate::Level::$level, $d($d rest)+)
                            };
                            ($d($d rest:tt)+) => {
                                $crate::log!($crate::Level::$level, $d($d rest)+)
                            };
                        }
    };
}

level_macro!($ debug, Debug, "debug", "Logs at debug (10): `debug!(\"msg\", key = value)`.");
level_macro!($ info, Info, "info", "Logs at info (20): `info!(\"msg\", key = value)`.");
level_macro!($ success, Success, "success", "Logs at success (25): `success!(\"msg\", key = value)`.");
level_macro!($ note, Note, "note", "Logs at note (26): `note!(\"msg\", key = value)`.");
level_macro!($ warning, Warning, "warning", "Logs at warning (30): `warning!(\"msg\", key = value)`.");
level_macro!($ error, Error, "error", "Logs at error (40): `error!(\"msg\", key = value)`.");
level_macro!($ critical, Critical, "critical", "Logs at critical (50): `critical!(\"msg\", key = value)`.");

/// Logs at info with `"📍 "` before the message: `checkpoint!("loaded", n = 3)`.
///
/// A literal message is joined to the `"📍 "` at compile time (no allocation); any other
/// message is formatted into a new `String`.
///
/// ```
/// # let mem = logxide::sink::MemorySink::new();
/// # let log = logxide::Logger::builder().sink(mem.clone()).build().unwrap();
/// logxide::checkpoint!(logger: log, "config loaded", entries = 3);
/// let stage = String::from("warm-up");
/// logxide::checkpoint!(logger: log, stage);
/// # log.flush(None).unwrap();
/// # let lines = mem.lines();
/// # assert!(lines[0].ends_with(r#""mt":"info","msg":"📍 config loaded","entries":3}"#));
/// # assert!(lines[1].ends_with(r#""mt":"info","msg":"📍 warm-up"}"#));
/// ```
#[macro_export]
macro_rules! checkpoint {
    (logger: $logger:expr, $msg:literal $(, $($fields:tt)*)?) => {
        $crate::__log_literal!(logger: $logger, $crate::Level::Info, "info",
            ::core::concat!("📍 ", $msg) $(, $($fields)*)?)
    };
    ($msg:literal $(, $($fields:tt)*)?) => {
        $crate::__log_literal!($crate::Level::Info, "info", ::core::concat!("📍 ", $msg) $(, $($fields)*)?)
    };
    (logger: $logger:expr, $msg:expr $(, $($fields:tt)*)?) => {
        $crate::log!(logger: $logger, $crate::Level::Info,
            ::std::format!("📍 {}", ::core::convert::AsRef::<str>::as_ref(&$msg)) $(, $($fields)*)?)
    };
    ($msg:expr $(, $($fields:tt)*)?) => {
        $crate::log!($crate::Level::Info,
            ::std::format!("📍 {}", ::core::convert::AsRef::<str>::as_ref(&$msg)) $(, $($fields)*)?)
    };
}

/// Logs an error at error level with its type (`exc`) and its text with its `source()` chain
/// (`reason`): `exception!(&err, "msg", key = value)`. The error is any `&E` where `E:
/// Error` (also `&dyn Error`); a `Box<dyn Error>` is not itself an `Error`: pass `&*boxed`.
///
/// ```
/// # let mem = logxide::sink::MemorySink::new();
/// # let log = logxide::Logger::builder().sink(mem.clone()).build().unwrap();
/// let err = "x".parse::<i32>().unwrap_err();
/// logxide::exception!(logger: log, &err, "bad port", input = "x");
/// # log.flush(None).unwrap();
/// # assert!(mem.lines()[0].ends_with(r#""mt":"error","msg":"bad port","exc":"core::num::error::ParseIntError","reason":"invalid digit found in string","input":"x"}"#));
/// let boxed: Box<dyn std::error::Error> = Box::new(err);
/// logxide::exception!(logger: log, &*boxed, "bad port again");
/// # log.flush(None).unwrap();
/// # assert!(mem.lines()[1].contains(r#""msg":"bad port again","exc":"#));
/// ```
#[macro_export]
macro_rules! exception {
    // The error is evaluated first, as written; by a `match`, whose scrutinee's temporaries
    // live to its end (a `let` would drop those the error borrows from).
    (logger: $logger:expr, $error:expr, $msg:expr $(, $($fields:tt)*)?) => {{
        let __logger = &$logger;
        if __logger.enabled($crate::Level::Error) {
            match $error {
                __error => __logger.log_error(::core::convert::AsRef::<str>::as_ref(&$msg), __error, |__f| {
                    $crate::__fields!(__f; $($($fields)*)?);
                }),
            }
        }
    }};
    ($error:expr, $msg:expr $(, $($fields:tt)*)?) => {{
        if $crate::logger::__enabled($crate::Level::Error) {
            match $error {
                __error => $crate::logger::__global_error(::core::convert::AsRef::<str>::as_ref(&$msg), __error, |__f| {
                    $crate::__fields!(__f; $($($fields)*)?);
                }),
            }
        }
    }};
}

/// Starts an action and enters it: `let _a = start_action!("db:query", sql = "SELECT 1");`
/// (or `start_action!(logger: log, "db:query", ...)`). See [`Action`](crate::logger::Action).
///
/// Without a global logger (before [`init`](crate::init), after a shutdown), the action
/// writes nowhere (its two records are counted as discarded: see
/// [`metrics`](crate::logger::metrics)) and is no parent: what is logged inside it once a
/// logger is installed makes tasks of its own, as does its
/// [context](crate::logger::Action::context), rather than a tree whose root is missing.
///
/// ```
/// # let mem = logxide::sink::MemorySink::new();
/// # let log = logxide::Logger::builder().sink(mem.clone()).build().unwrap();
/// {
///     let _query = logxide::start_action!(logger: log, "db:query", sql = "SELECT 1");
///     logxide::debug!(logger: log, "rows fetched", rows = 1);
/// }
/// # log.flush(None).unwrap();
/// # let lines = mem.lines();
/// # assert!(lines[0].contains(r#""lvl":[1],"at":"db:query","st":"started","sql":"SELECT 1""#));
/// # assert!(lines[1].contains(r#""lvl":[2],"mt":"debug","msg":"rows fetched","rows":1"#));
/// # assert!(lines[2].contains(r#""lvl":[3],"at":"db:query","st":"succeeded""#));
/// ```
#[macro_export]
macro_rules! start_action {
    (logger: $logger:expr, $action_type:expr $(, $($fields:tt)*)?) => {
        $logger.start_action($action_type, |__f| {
            $crate::__fields!(__f; $($($fields)*)?);
        })
    };
    ($action_type:expr $(, $($fields:tt)*)?) => {
        $crate::logger::__global_action($action_type, |__f| {
            $crate::__fields!(__f; $($($fields)*)?);
        })
    };
}
