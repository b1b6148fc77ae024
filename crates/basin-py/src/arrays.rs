//! NumPy arrays in, borrowed where their layout allows: float64 matrices in C or Fortran
//! order are read in place; float32 ones and strided views are copied (to float64, or to
//! row-major). A wrong dimension or dtype is a `ValueError` that names the argument.

use std::borrow::Cow;

use basin_prior::faer::MatRef;
use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use crate::errors::value_error;

/// The shape and dtype of an array argument, checked to have `ndim` dimensions and a float
/// dtype.
fn checked_array<'a, 'py>(
    obj: &'a Bound<'py, PyAny>,
    arg: &str,
    ndim: usize,
) -> PyResult<&'a Bound<'py, PyUntypedArray>> {
    let arr = obj.cast::<PyUntypedArray>().map_err(|_| {
        value_error(
            arg,
            format!(
                "expected a NumPy array, got {}",
                obj.get_type()
                    .name()
                    .map_or("an object".into(), |n| n.to_string())
            ),
        )
    })?;
    if arr.ndim() != ndim {
        return Err(value_error(
            arg,
            format!(
                "expected a {ndim}-D array, got shape {:?}",
                arr.shape().to_vec()
            ),
        ));
    }
    Ok(arr)
}

fn dtype_error(arg: &str, arr: &Bound<'_, PyUntypedArray>) -> PyErr {
    let dtype = arr
        .dtype()
        .str()
        .map_or_else(|_| "?".to_owned(), |s| s.to_string());
    value_error(
        arg,
        format!("expected float64 or float32 values, got {dtype}"),
    )
}

/// A float64 matrix: borrowed from a contiguous float64 array, or copied.
pub enum Matrix<'py> {
    /// A float64 array in C (row-major) or Fortran (column-major) order.
    Borrowed {
        /// The array, borrowed read-only while the value lives.
        array: PyReadonlyArray2<'py, f64>,
        /// Whether it is in C order.
        c_order: bool,
    },
    /// A row-major copy.
    Owned {
        /// The values, row by row.
        values: Vec<f64>,
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
}

impl<'py> Matrix<'py> {
    /// The 2-D float array `obj` (argument `arg`).
    pub fn extract(obj: &Bound<'py, PyAny>, arg: &str) -> PyResult<Self> {
        let untyped = checked_array(obj, arg, 2)?;
        if let Ok(a) = obj.cast::<PyArray2<f64>>() {
            let array = a.try_readonly().map_err(|e| value_error(arg, e))?;
            if array.is_c_contiguous() || array.is_fortran_contiguous() {
                let c_order = array.is_c_contiguous();
                return Ok(Matrix::Borrowed { array, c_order });
            }
            let view = array.as_array();
            return Ok(Matrix::Owned {
                values: view.iter().copied().collect(),
                rows: view.nrows(),
                cols: view.ncols(),
            });
        }
        if let Ok(a) = obj.cast::<PyArray2<f32>>() {
            let array = a.try_readonly().map_err(|e| value_error(arg, e))?;
            let view = array.as_array();
            return Ok(Matrix::Owned {
                values: view.iter().map(|&v| f64::from(v)).collect(),
                rows: view.nrows(),
                cols: view.ncols(),
            });
        }
        Err(dtype_error(arg, untyped))
    }

    /// (rows, columns).
    pub fn shape(&self) -> (usize, usize) {
        match self {
            Matrix::Borrowed { array, .. } => (array.shape()[0], array.shape()[1]),
            Matrix::Owned { rows, cols, .. } => (*rows, *cols),
        }
    }

    /// The matrix as faer sees it, without copying.
    pub fn view(&self) -> MatRef<'_, f64> {
        let (rows, cols) = self.shape();
        match self {
            Matrix::Borrowed { array, c_order } => {
                let values = array.as_slice().expect("checked contiguous");
                if *c_order {
                    MatRef::from_row_major_slice(values, rows, cols)
                } else {
                    MatRef::from_column_major_slice(values, rows, cols)
                }
            }
            Matrix::Owned { values, .. } => MatRef::from_row_major_slice(values, rows, cols),
        }
    }

    /// The values row by row: borrowed for a C-order float64 array, copied otherwise.
    pub fn row_major(&self) -> Cow<'_, [f64]> {
        match self {
            Matrix::Borrowed {
                array,
                c_order: true,
            } => Cow::Borrowed(array.as_slice().expect("checked contiguous")),
            Matrix::Borrowed { array, .. } => {
                Cow::Owned(array.as_array().iter().copied().collect())
            }
            Matrix::Owned { values, .. } => Cow::Borrowed(values),
        }
    }
}

/// Features `X` (n × d) in their own precision: float32 stays float32.
pub enum Features<'py> {
    /// float32 values.
    F32(PyReadonlyArray2<'py, f32>),
    /// float64 values.
    F64(Matrix<'py>),
}

/// Features row by row, borrowed from a C-order array or copied.
pub enum Rows<'a> {
    /// float32 values.
    F32(Cow<'a, [f32]>),
    /// float64 values.
    F64(Cow<'a, [f64]>),
}

impl<'py> Features<'py> {
    /// The 2-D float array `obj` (argument `arg`).
    pub fn extract(obj: &Bound<'py, PyAny>, arg: &str) -> PyResult<Self> {
        checked_array(obj, arg, 2)?;
        if let Ok(a) = obj.cast::<PyArray2<f32>>() {
            return Ok(Features::F32(
                a.try_readonly().map_err(|e| value_error(arg, e))?,
            ));
        }
        Matrix::extract(obj, arg).map(Features::F64)
    }

    /// (examples, input dimension).
    pub fn shape(&self) -> (usize, usize) {
        match self {
            Features::F32(a) => (a.shape()[0], a.shape()[1]),
            Features::F64(m) => m.shape(),
        }
    }

    /// The values row by row.
    pub fn rows(&self) -> Rows<'_> {
        match self {
            Features::F32(a) => Rows::F32(match a.as_slice() {
                Ok(s) if a.is_c_contiguous() => Cow::Borrowed(s),
                _ => Cow::Owned(a.as_array().iter().copied().collect()),
            }),
            Features::F64(m) => Rows::F64(m.row_major()),
        }
    }
}

/// A float64 vector argument (the Python layer converts labels and parameters to float64
/// first), checked to have `len` entries when given.
pub fn vector<'py>(
    obj: &Bound<'py, PyAny>,
    arg: &str,
    len: Option<usize>,
) -> PyResult<PyReadonlyArray1<'py, f64>> {
    let untyped = checked_array(obj, arg, 1)?;
    let array = obj
        .cast::<PyArray1<f64>>()
        .map_err(|_| dtype_error(arg, untyped))?
        .try_readonly()
        .map_err(|e| value_error(arg, e))?;
    if let Some(len) = len
        && array.len() != len
    {
        return Err(value_error(
            arg,
            format!("expected {len} values, got {}", array.len()),
        ));
    }
    if !array.is_contiguous() {
        return Err(value_error(arg, "expected a contiguous array"));
    }
    Ok(array)
}

/// 0/1 labels from ±1 or 0/1 values, one per example; anything else is a `ValueError`.
pub fn binary_labels(values: &[f64], arg: &str) -> PyResult<Vec<u8>> {
    let zero_one = values.iter().all(|&v| v == 0.0 || v == 1.0);
    let signs = values.iter().all(|&v| v == -1.0 || v == 1.0);
    if !(zero_one || signs) {
        let bad = values
            .iter()
            .find(|&&v| !(v == 0.0 || v == 1.0 || v == -1.0))
            .copied();
        return Err(value_error(
            arg,
            match bad {
                Some(v) => format!("labels must be 0/1 or ±1, found {v}"),
                None => "labels mix 0 and -1: give them as 0/1 or as ±1".to_owned(),
            },
        ));
    }
    Ok(values.iter().map(|&v| u8::from(v > 0.0)).collect())
}
