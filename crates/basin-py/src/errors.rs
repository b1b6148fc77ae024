//! The module's exceptions: `basin.BasinError` for what basin's libraries refuse or fail at,
//! `ValueError` (naming the argument) for arguments of the wrong kind, shape or value.

use std::fmt::Display;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use serde::de::DeserializeOwned;

create_exception!(
    basin,
    BasinError,
    PyException,
    "An error reported by basin's Rust libraries, with their message: invalid settings, a \
     kernel that is not positive semi-definite, a non-finite value, a file that cannot be \
     read, a locked output folder."
);

/// A library error as a `basin.BasinError` with its message.
pub fn basin_error(e: impl Display) -> PyErr {
    BasinError::new_err(e.to_string())
}

/// A `ValueError` that names the argument `arg`.
pub fn value_error(arg: &str, problem: impl Display) -> PyErr {
    PyValueError::new_err(format!("{arg}: {problem}"))
}

/// The value named `name` of a serde enum (`"f32"`, `"shuffled"`, `"ep-sequential"`, …), or a
/// `ValueError` that names the argument and lists the accepted names.
pub fn parse_name<T: DeserializeOwned>(arg: &str, name: &str) -> PyResult<T> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|e| value_error(arg, e))
}

/// A JSON text of a result, or a `BasinError` (serialising basin's results does not fail).
pub fn to_json(value: &impl serde::Serialize) -> PyResult<String> {
    serde_json::to_string(value).map_err(basin_error)
}
