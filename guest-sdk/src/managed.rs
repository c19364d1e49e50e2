//! `Manager().dict()` and `Manager().list()`: a dictionary and a list every holding
//! process reads and changes, kept by the host (which plays the manager's server process).

use crate::__private::bindings::wasmproc::process::sync as host;
use crate::sync::{Inner, Part, decode};
use crate::{Error, ErrorKind};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;

/// The marker that keeps a proxy invariant in the types it holds.
type Invariant<T> = fn(T) -> T;

/// Makes shared dictionaries and lists, as `multiprocessing.Manager()`. There is no
/// manager process: the host keeps the objects, as it keeps every other one, so a
/// `Manager` holds nothing and costs nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Manager;

impl Manager {
    /// A manager. Python: `Manager()` (or `with Manager() as m:`).
    pub fn new() -> Manager {
        Manager
    }

    /// A new, empty shared dictionary. Python: `m.dict()`.
    ///
    /// # Errors
    /// [`ErrorKind::LimitExceeded`] when the run's `objects` limit is reached.
    pub fn dict<K, V>(&self) -> Result<DictProxy<K, V>, Error> {
        Ok(DictProxy {
            inner: Inner::get(host::dict_new()?),
            _types: PhantomData,
        })
    }

    /// A new, empty shared list. Python: `m.list()`.
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    pub fn list<T>(&self) -> Result<ListProxy<T>, Error> {
        Ok(ListProxy {
            inner: Inner::get(host::list_new()?),
            _types: PhantomData,
        })
    }
}

fn encode<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<Vec<u8>, Error> {
    postcard::to_allocvec(value).map_err(|e| crate::sync::serialize_error(e, || what.to_string()))
}

/// A dictionary shared by the processes that hold it, as the proxy `Manager().dict()`
/// returns. Keys keep the order in which they were first set, as in a Python `dict`; two
/// keys are the same when their serialised forms are (as they are for equal strings and
/// numbers). Each call is one operation on the host's dictionary: `d.set(k, d.get(k)? + 1)`
/// is two, so guard such a change with a [`Lock`](crate::Lock), as with a Python proxy.
///
/// # Caveats
/// Keys and values are serialised with `postcard`; sync objects cannot be among them.
/// Cloning shares the dictionary; it can be passed to another process in a child's start
/// arguments, a queue item or a pipe message.
pub struct DictProxy<K, V> {
    inner: Rc<Inner>,
    _types: PhantomData<Invariant<(K, V)>>,
}

impl<K, V> Clone for DictProxy<K, V> {
    fn clone(&self) -> Self {
        DictProxy {
            inner: self.inner.clone(),
            _types: PhantomData,
        }
    }
}

impl<K, V> fmt::Debug for DictProxy<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DictProxy")
            .field("handle", &self.inner.handle())
            .finish()
    }
}

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> DictProxy<K, V> {
    /// The value of `key`, if it has one. Python: `d.get(key)`.
    ///
    /// # Errors
    /// As [`Event::set`](crate::Event::set); [`ErrorKind::InvalidArgument`] for a key
    /// that cannot be serialised or a value that does not decode as `V`.
    pub fn get(&self, key: &K) -> Result<Option<V>, Error> {
        host::dict_get(self.inner.handle(), &encode(key, "a key")?)?
            .map(|v| decode(&v, "a value"))
            .transpose()
    }

    /// The value of `key`. Python: `d[key]`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] "the dictionary has no such key" (Python's
    /// `KeyError`) when `key` has no value; otherwise as
    /// [`get`](Self::get).
    pub fn index(&self, key: &K) -> Result<V, Error> {
        self.get(key)?
            .ok_or_else(|| Error::new(ErrorKind::InvalidArgument, "the dictionary has no such key"))
    }

    /// Sets the value of `key`. Python: `d[key] = value`.
    ///
    /// # Errors
    /// [`ErrorKind::LimitExceeded`] for a key or value larger than the run's `message`
    /// limit, or past its `queued` limit; otherwise as [`get`](Self::get).
    pub fn set(&self, key: &K, value: &V) -> Result<(), Error> {
        let key = encode(key, "a key")?;
        let value = encode(value, "a value")?;
        Ok(host::dict_set(self.inner.handle(), &key, &value)?)
    }

    /// Removes `key`: its value, if it had one. Python: `d.pop(key, None)`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn remove(&self, key: &K) -> Result<Option<V>, Error> {
        host::dict_remove(self.inner.handle(), &encode(key, "a key")?)?
            .map(|v| decode(&v, "a value"))
            .transpose()
    }

    /// Whether `key` has a value. Python: `key in d`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn contains_key(&self, key: &K) -> Result<bool, Error> {
        Ok(host::dict_get(self.inner.handle(), &encode(key, "a key")?)?.is_some())
    }

    /// The number of keys. Python: `len(d)`.
    ///
    /// # Errors
    /// As [`Event::set`](crate::Event::set).
    pub fn len(&self) -> Result<usize, Error> {
        Ok(host::dict_len(self.inner.handle())? as usize)
    }

    /// Whether the dictionary has no key.
    ///
    /// # Errors
    /// As [`len`](Self::len).
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// Every key and value, in order, as one moment saw them. Python: `d.items()`.
    ///
    /// # Errors
    /// [`ErrorKind::LimitExceeded`] when they come to more bytes than the run's `message`
    /// limit; otherwise as [`get`](Self::get).
    pub fn items(&self) -> Result<Vec<(K, V)>, Error> {
        host::dict_items(self.inner.handle())?
            .iter()
            .map(|(k, v)| Ok((decode(k, "a key")?, decode(v, "a value")?)))
            .collect()
    }

    /// Every key, in order. Python: `d.keys()`.
    ///
    /// # Errors
    /// As [`items`](Self::items).
    pub fn keys(&self) -> Result<Vec<K>, Error> {
        host::dict_items(self.inner.handle())?
            .iter()
            .map(|(k, _)| decode(k, "a key"))
            .collect()
    }

    /// Every value, in the keys' order. Python: `d.values()`.
    ///
    /// # Errors
    /// As [`items`](Self::items).
    pub fn values(&self) -> Result<Vec<V>, Error> {
        host::dict_items(self.inner.handle())?
            .iter()
            .map(|(_, v)| decode(v, "a value"))
            .collect()
    }

    /// Removes every key. Python: `d.clear()`.
    ///
    /// # Errors
    /// As [`Event::set`](crate::Event::set).
    pub fn clear(&self) -> Result<(), Error> {
        Ok(host::dict_clear(self.inner.handle())?)
    }

    /// The raw handle of the dictionary.
    pub fn handle(&self) -> u64 {
        self.inner.handle()
    }
}

impl<K, V> Serialize for DictProxy<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Part(&self.inner, "DictProxy").serialize(serializer)
    }
}

impl<'de, K, V> Deserialize<'de> for DictProxy<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(DictProxy {
            inner: Inner::get(u64::deserialize(deserializer)?),
            _types: PhantomData,
        })
    }
}

/// A list shared by the processes that hold it, as the proxy `Manager().list()` returns.
/// Each call is one operation on the host's list, as [`DictProxy`]'s are.
pub struct ListProxy<T> {
    inner: Rc<Inner>,
    _types: PhantomData<fn(T) -> T>,
}

impl<T> Clone for ListProxy<T> {
    fn clone(&self) -> Self {
        ListProxy {
            inner: self.inner.clone(),
            _types: PhantomData,
        }
    }
}

impl<T> fmt::Debug for ListProxy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListProxy")
            .field("handle", &self.inner.handle())
            .finish()
    }
}

fn index(i: usize) -> Result<u32, Error> {
    u32::try_from(i).map_err(|_| Error::new(ErrorKind::InvalidArgument, "list index out of range"))
}

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// The number of items. Python: `len(l)`.
    ///
    /// # Errors
    /// As [`Event::set`](crate::Event::set).
    pub fn len(&self) -> Result<usize, Error> {
        Ok(host::list_len(self.inner.handle())? as usize)
    }

    /// Whether the list has no item.
    ///
    /// # Errors
    /// As [`len`](Self::len).
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// Item `i`. Python: `l[i]`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] "list index out of range" (Python's `IndexError`);
    /// otherwise as [`DictProxy::get`].
    pub fn get(&self, i: usize) -> Result<T, Error> {
        decode(&host::list_get(self.inner.handle(), index(i)?)?, "an item")
    }

    /// Replaces item `i`. Python: `l[i] = item`.
    ///
    /// # Errors
    /// As [`get`](Self::get); [`ErrorKind::LimitExceeded`] as [`DictProxy::set`].
    pub fn set(&self, i: usize, item: &T) -> Result<(), Error> {
        let item = encode(item, "an item")?;
        Ok(host::list_set(self.inner.handle(), index(i)?, &item)?)
    }

    /// Appends `item`. Python: `l.append(item)`.
    ///
    /// # Errors
    /// [`ErrorKind::LimitExceeded`] as [`DictProxy::set`].
    pub fn append(&self, item: &T) -> Result<(), Error> {
        self.insert(usize::MAX, item)
    }

    /// Inserts `item` before item `i` (at the end for `i` at or beyond the length).
    /// Python: `l.insert(i, item)`.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    pub fn insert(&self, i: usize, item: &T) -> Result<(), Error> {
        let item = encode(item, "an item")?;
        let at = u32::try_from(i).unwrap_or(u32::MAX);
        Ok(host::list_insert(self.inner.handle(), at, &item)?)
    }

    /// Removes and returns item `i` (`None`: the last). Python: `l.pop(i)`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] "pop from empty list" or "pop index out of range";
    /// otherwise as [`get`](Self::get).
    pub fn pop(&self, i: Option<usize>) -> Result<T, Error> {
        let at = i
            .map(|i| {
                u32::try_from(i)
                    .map_err(|_| Error::new(ErrorKind::InvalidArgument, "pop index out of range"))
            })
            .transpose()?;
        decode(&host::list_pop(self.inner.handle(), at)?, "an item")
    }

    /// Every item, in order, as one moment saw them. Python: `l[:]`.
    ///
    /// # Errors
    /// As [`DictProxy::items`].
    pub fn to_vec(&self) -> Result<Vec<T>, Error> {
        host::list_items(self.inner.handle())?
            .iter()
            .map(|i| decode(i, "an item"))
            .collect()
    }

    /// The raw handle of the list.
    pub fn handle(&self) -> u64 {
        self.inner.handle()
    }
}

impl<T> Serialize for ListProxy<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Part(&self.inner, "ListProxy").serialize(serializer)
    }
}

impl<'de, T> Deserialize<'de> for ListProxy<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(ListProxy {
            inner: Inner::get(u64::deserialize(deserializer)?),
            _types: PhantomData,
        })
    }
}
