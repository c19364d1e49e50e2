//! `Value`, `Array`, `RawValue` and `RawArray`: numbers every holding process sees at
//! once, as Python's `multiprocessing.sharedctypes` has them.
//!
//! The numbers live in a block of bytes the host keeps (little-endian); each read or write
//! of an element, or of a whole array, is one host call and is atomic: a concurrent reader
//! sees all of a write or none of it. A read-modify-write (`v.set(v.get()? + 1)`) is not:
//! hold the lock of a [`Value`] or [`Array`] around it, as in Python.

use crate::__private::bindings::wasmproc::process::sync as host;
use crate::sync::{Inner, Part};
use crate::{Error, ErrorKind, RLock};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::rc::Rc;

mod sealed {
    pub trait Sealed {}
}

/// A plain number a [`Value`] or [`Array`] holds: `i8`, `u8`, `i16`, `u16`, `i32`, `u32`,
/// `i64`, `u64`, `f32` or `f64` (Python's type codes `b`, `B`, `h`, `H`, `i`, `I`, `q`,
/// `Q`, `f` and `d`).
pub trait Scalar: Copy + Default + fmt::Debug + sealed::Sealed + 'static {
    /// Its size in bytes.
    const SIZE: usize;
    #[doc(hidden)]
    fn put_le(self, out: &mut [u8]);
    #[doc(hidden)]
    fn from_le(bytes: &[u8]) -> Self;
}

macro_rules! scalar {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Scalar for $t {
            const SIZE: usize = std::mem::size_of::<$t>();

            fn put_le(self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }

            fn from_le(bytes: &[u8]) -> Self {
                let mut raw = [0u8; std::mem::size_of::<$t>()];
                raw.copy_from_slice(bytes);
                <$t>::from_le_bytes(raw)
            }
        }
    )*};
}
scalar!(i8, u8, i16, u16, i32, u32, i64, u64, f32, f64);

/// An array of `T` in shared memory, without a lock, as `multiprocessing.RawArray`.
///
/// # Caveats
/// Cloning shares the array; it can be passed to another process in a child's start
/// arguments, a queue item or a pipe message.
pub struct RawArray<T> {
    inner: Rc<Inner>,
    len: u32,
    _item: PhantomData<T>,
}

impl<T> Clone for RawArray<T> {
    fn clone(&self) -> Self {
        RawArray {
            inner: self.inner.clone(),
            len: self.len,
            _item: PhantomData,
        }
    }
}

impl<T> fmt::Debug for RawArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawArray")
            .field("handle", &self.inner.handle())
            .field("len", &self.len)
            .finish()
    }
}

fn invalid_index() -> Error {
    Error::new(ErrorKind::InvalidArgument, "invalid index")
}

impl<T: Scalar> RawArray<T> {
    /// A new array of `len` zeros. Python: `RawArray(typecode, len)`.
    ///
    /// # Errors
    /// [`ErrorKind::LimitExceeded`] when the array is larger than the run's `message`
    /// limit, would take the bytes the run's objects hold past its `queued` limit, or the
    /// run's `objects` limit is reached; [`ErrorKind::InvalidArgument`] for a size beyond
    /// 4 GiB.
    pub fn zeros(len: usize) -> Result<RawArray<T>, Error> {
        let too_large = || {
            Error::invalid_argument(format!(
                "an array of {len} {} is larger than 4 GiB",
                std::any::type_name::<T>()
            ))
        };
        let n = u32::try_from(len).map_err(|_| too_large())?;
        let size = len
            .checked_mul(T::SIZE)
            .and_then(|s| u32::try_from(s).ok())
            .ok_or_else(too_large)?;
        Ok(RawArray {
            inner: Inner::get(host::memory_new(size)?),
            len: n,
            _item: PhantomData,
        })
    }

    /// A new array holding `values`. Python: `RawArray(typecode, values)`.
    ///
    /// # Errors
    /// As [`zeros`](Self::zeros).
    pub fn new(values: &[T]) -> Result<RawArray<T>, Error> {
        let array = Self::zeros(values.len())?;
        if !values.is_empty() {
            array.write(0, values)?;
        }
        Ok(array)
    }

    /// The number of elements. Python: `len(a)`.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the array has no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element `i`. Python: `a[i]`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] "invalid index" for `i` beyond the end (Python's
    /// `IndexError`).
    pub fn get(&self, i: usize) -> Result<T, Error> {
        Ok(self.read(i, 1)?[0])
    }

    /// Sets element `i`. Python: `a[i] = v`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn set(&self, i: usize, value: T) -> Result<(), Error> {
        self.write(i, &[value])
    }

    /// `n` elements from `start`, read at once. Python: `a[start:start + n]`.
    ///
    /// # Errors
    /// As [`get`](Self::get), for a range beyond the end.
    pub fn read(&self, start: usize, n: usize) -> Result<Vec<T>, Error> {
        let (offset, bytes) = self.range(start, n)?;
        let data = host::memory_read(self.inner.handle(), offset, bytes)?;
        Ok(data.chunks_exact(T::SIZE).map(T::from_le).collect())
    }

    /// Writes `values` from element `start`, at once. Python: `a[start:start + n] = values`.
    ///
    /// # Errors
    /// As [`read`](Self::read).
    pub fn write(&self, start: usize, values: &[T]) -> Result<(), Error> {
        let (offset, _) = self.range(start, values.len())?;
        let mut data = vec![0u8; values.len() * T::SIZE];
        for (chunk, v) in data.chunks_exact_mut(T::SIZE).zip(values) {
            v.put_le(chunk);
        }
        Ok(host::memory_write(self.inner.handle(), offset, &data)?)
    }

    /// Every element, read at once. Python: `a[:]`.
    ///
    /// # Errors
    /// As [`Event::set`](crate::Event::set).
    pub fn to_vec(&self) -> Result<Vec<T>, Error> {
        self.read(0, self.len())
    }

    /// The byte offset and length of elements `start..start + n`.
    fn range(&self, start: usize, n: usize) -> Result<(u32, u32), Error> {
        match start.checked_add(n) {
            Some(end) if end <= self.len() => Ok(((start * T::SIZE) as u32, (n * T::SIZE) as u32)),
            _ => Err(invalid_index()),
        }
    }

    /// The raw handle of the array's memory.
    pub fn handle(&self) -> u64 {
        self.inner.handle()
    }
}

impl<T> Serialize for RawArray<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (Part(&self.inner, "RawArray"), self.len).serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for RawArray<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (handle, len) = <(u64, u32)>::deserialize(deserializer)?;
        Ok(RawArray {
            inner: Inner::get(handle),
            len,
            _item: PhantomData,
        })
    }
}

/// A [`RawArray`] with a lock, as `multiprocessing.Array(typecode, ..)`: every method of
/// `RawArray` works on it, and [`get_lock`](Self::get_lock) gives the [`RLock`] to hold
/// around a read-modify-write.
pub struct Array<T> {
    array: RawArray<T>,
    lock: RLock,
}

impl<T> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array {
            array: self.array.clone(),
            lock: self.lock.clone(),
        }
    }
}

impl<T> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array")
            .field("array", &self.array)
            .field("lock", &self.lock)
            .finish()
    }
}

impl<T> Deref for Array<T> {
    type Target = RawArray<T>;

    fn deref(&self) -> &RawArray<T> {
        &self.array
    }
}

impl<T: Scalar> Array<T> {
    /// A new array holding `values`, with a new lock. Python: `Array(typecode, values)`.
    ///
    /// # Errors
    /// As [`RawArray::zeros`].
    pub fn new(values: &[T]) -> Result<Array<T>, Error> {
        Self::with_lock(values, RLock::new()?)
    }

    /// A new array of `len` zeros, with a new lock. Python: `Array(typecode, len)`.
    ///
    /// # Errors
    /// As [`RawArray::zeros`].
    pub fn zeros(len: usize) -> Result<Array<T>, Error> {
        Ok(Array {
            array: RawArray::zeros(len)?,
            lock: RLock::new()?,
        })
    }

    /// A new array holding `values`, guarded by `lock`. Python: `Array(typecode, values,
    /// lock=rlock)`.
    ///
    /// # Errors
    /// As [`RawArray::zeros`].
    pub fn with_lock(values: &[T], lock: RLock) -> Result<Array<T>, Error> {
        Ok(Array {
            array: RawArray::new(values)?,
            lock,
        })
    }

    /// The array's lock. Python: `get_lock()`.
    pub fn get_lock(&self) -> &RLock {
        &self.lock
    }

    /// The array without its lock. Python: `get_obj()`.
    pub fn get_obj(&self) -> &RawArray<T> {
        &self.array
    }
}

impl<T> Serialize for Array<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&self.array, &self.lock).serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Array<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (array, lock) = <(RawArray<T>, RLock)>::deserialize(deserializer)?;
        Ok(Array { array, lock })
    }
}

/// One `T` in shared memory, without a lock, as `multiprocessing.RawValue`.
pub struct RawValue<T>(RawArray<T>);

impl<T> Clone for RawValue<T> {
    fn clone(&self) -> Self {
        RawValue(self.0.clone())
    }
}

impl<T> fmt::Debug for RawValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawValue")
            .field("handle", &self.0.inner.handle())
            .finish()
    }
}

impl<T: Scalar> RawValue<T> {
    /// A new value. Python: `RawValue(typecode, value)`.
    ///
    /// # Errors
    /// As [`RawArray::zeros`].
    pub fn new(value: T) -> Result<RawValue<T>, Error> {
        Ok(RawValue(RawArray::new(&[value])?))
    }

    /// The value now. Python: `v.value`.
    ///
    /// # Errors
    /// As [`Event::set`](crate::Event::set).
    pub fn get(&self) -> Result<T, Error> {
        self.0.get(0)
    }

    /// Sets the value. Python: `v.value = x`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn set(&self, value: T) -> Result<(), Error> {
        self.0.set(0, value)
    }

    /// The raw handle of the value's memory.
    pub fn handle(&self) -> u64 {
        self.0.handle()
    }
}

impl<T> Serialize for RawValue<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for RawValue<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        RawArray::deserialize(deserializer).map(RawValue)
    }
}

/// A [`RawValue`] with a lock, as `multiprocessing.Value(typecode, value)`.
///
/// ```no_run
/// use wasmproc_guest::{Process, Value, targets};
///
/// fn add(v: Value<i64>) {
///     let _guard = v.get_lock().lock().unwrap();
///     v.set(v.get().unwrap() + 1).unwrap();
/// }
/// targets![add];
///
/// fn main() -> Result<(), wasmproc_guest::Error> {
///     let v = Value::new(0i64)?;
///     let p = Process::new("add", &v)?;
///     p.start()?;
///     p.join(None)?;
///     assert_eq!(v.get()?, 1);
///     Ok(())
/// }
/// ```
pub struct Value<T> {
    value: RawValue<T>,
    lock: RLock,
}

impl<T> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value {
            value: self.value.clone(),
            lock: self.lock.clone(),
        }
    }
}

impl<T> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value")
            .field("value", &self.value)
            .field("lock", &self.lock)
            .finish()
    }
}

impl<T> Deref for Value<T> {
    type Target = RawValue<T>;

    fn deref(&self) -> &RawValue<T> {
        &self.value
    }
}

impl<T: Scalar> Value<T> {
    /// A new value with a new lock. Python: `Value(typecode, value)`.
    ///
    /// # Errors
    /// As [`RawArray::zeros`].
    pub fn new(value: T) -> Result<Value<T>, Error> {
        Self::with_lock(value, RLock::new()?)
    }

    /// A new value guarded by `lock`. Python: `Value(typecode, value, lock=rlock)`.
    ///
    /// # Errors
    /// As [`RawArray::zeros`].
    pub fn with_lock(value: T, lock: RLock) -> Result<Value<T>, Error> {
        Ok(Value {
            value: RawValue::new(value)?,
            lock,
        })
    }

    /// The value's lock. Python: `get_lock()`.
    pub fn get_lock(&self) -> &RLock {
        &self.lock
    }

    /// The value without its lock. Python: `get_obj()`.
    pub fn get_obj(&self) -> &RawValue<T> {
        &self.value
    }
}

impl<T> Serialize for Value<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&self.value, &self.lock).serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for Value<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (value, lock) = <(RawValue<T>, RLock)>::deserialize(deserializer)?;
        Ok(Value { value, lock })
    }
}
