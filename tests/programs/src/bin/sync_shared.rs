//! CPython `_TestValue` and `_TestArray` (Lib/test/_test_multiprocessing.py: test_value,
//! test_rawvalue, test_getobj_getlock, test_array, test_array_from_size, test_rawarray,
//! test_getobj_getlock_obj), in our words, plus a counter several processes increment
//! under the value's lock, and the errors of bad indexes and sizes.

use programs::fmt;
use wasmproc_guest::{Array, Process, RLock, RawArray, RawValue, Value, targets};

type Values = (Value<i32>, Value<f64>, Value<i16>, Value<i64>, Value<u8>);
type RawValues = (
    RawValue<i32>,
    RawValue<f64>,
    RawValue<i16>,
    RawValue<i64>,
    RawValue<u8>,
);

/// Sets every value to its second figure.
fn set_values((i, d, h, q, c): Values) {
    i.set(24234).unwrap();
    d.set(-4.25).unwrap();
    h.set(234).unwrap();
    q.set(1 << 34).unwrap();
    c.set(b'y').unwrap();
}

fn set_raw_values((i, d, h, q, c): RawValues) {
    i.set(24234).unwrap();
    d.set(-4.25).unwrap();
    h.set(234).unwrap();
    q.set(1 << 34).unwrap();
    c.set(b'y').unwrap();
}

/// Turns the array into its running sums, element by element.
fn running_sums(a: Array<i32>) {
    for i in 1..a.len() {
        let sum = a.get(i).unwrap() + a.get(i - 1).unwrap();
        a.set(i, sum).unwrap();
    }
}

fn raw_running_sums(a: RawArray<i32>) {
    let mut all = a.to_vec().unwrap();
    for i in 1..all.len() {
        all[i] += all[i - 1];
    }
    a.write(0, &all).unwrap();
}

/// Adds 1 to the counter 100 times, each under its lock.
fn add_100(counter: Value<u64>) {
    for _ in 0..100 {
        let _held = counter.get_lock().lock().unwrap();
        counter.set(counter.get().unwrap() + 1).unwrap();
    }
}

targets![
    set_values,
    set_raw_values,
    running_sums,
    raw_running_sums,
    add_100
];

fn run(target: &str, args: &impl serde::Serialize) {
    let p = Process::new(target, args).unwrap();
    p.start().unwrap();
    p.join(None).unwrap();
    println!("{target} exitcode: {:?}", p.exitcode().unwrap());
}

fn main() {
    println!("-- Value");
    let values: Values = (
        Value::new(4343).unwrap(),
        Value::new(3.625).unwrap(),
        Value::new(-232).unwrap(),
        Value::new(1 << 33).unwrap(),
        Value::new(b'x').unwrap(),
    );
    let show = |v: &Values| {
        format!(
            "{} {} {} {} {:?}",
            v.0.get().unwrap(),
            v.1.get().unwrap(),
            v.2.get().unwrap(),
            v.3.get().unwrap(),
            v.4.get().unwrap() as char
        )
    };
    println!("before: {}", show(&values));
    run("set_values", &values);
    println!("after: {}", show(&values));

    println!("-- RawValue");
    let raw: RawValues = (
        RawValue::new(4343).unwrap(),
        RawValue::new(3.625).unwrap(),
        RawValue::new(-232).unwrap(),
        RawValue::new(1 << 33).unwrap(),
        RawValue::new(b'x').unwrap(),
    );
    run("set_raw_values", &raw);
    println!(
        "after: {} {} {} {} {:?}",
        raw.0.get().unwrap(),
        raw.1.get().unwrap(),
        raw.2.get().unwrap(),
        raw.3.get().unwrap(),
        raw.4.get().unwrap() as char
    );

    println!("-- get_lock and get_obj");
    let v = Value::new(5i32).unwrap();
    println!("get_obj: {}", v.get_obj().get().unwrap());
    println!("get_lock acquire: {}", fmt(&v.get_lock().acquire()));
    println!("get_lock release: {}", fmt(&v.get_lock().release()));
    let lock = RLock::new().unwrap();
    let w = Value::with_lock(7i32, lock.clone()).unwrap();
    println!(
        "with_lock: the lock given: {}",
        w.get_lock().handle() == lock.handle()
    );
    let a = Array::new(&[1u8, 2]).unwrap();
    println!("Array get_obj: {:?}", a.get_obj().to_vec().unwrap());

    println!("-- a counter, 4 processes adding 100 each under the lock");
    let counter = Value::new(0u64).unwrap();
    let adders: Vec<Process> = (0..4)
        .map(|_| Process::new("add_100", &counter).unwrap())
        .collect();
    for p in &adders {
        p.start().unwrap();
    }
    for p in &adders {
        p.join(None).unwrap();
    }
    println!("counter: {}", counter.get().unwrap());

    println!("-- Array");
    let seq: Vec<i32> = (0..10).collect();
    let arr = Array::new(&seq).unwrap();
    println!("len: {}", arr.len());
    println!("arr[3]: {}", fmt(&arr.get(3)));
    println!("arr[2..5]: {}", fmt(&arr.read(2, 3)));
    run("running_sums", &arr);
    println!("after: {}", fmt(&arr.to_vec()));

    println!("-- Array from a size");
    let zeros = Array::<i32>::zeros(10).unwrap();
    println!("len: {}, all: {}", zeros.len(), fmt(&zeros.to_vec()));
    let empty = RawArray::<f64>::zeros(0).unwrap();
    println!(
        "empty: len {}, is_empty {}, all {}",
        empty.len(),
        empty.is_empty(),
        fmt(&empty.to_vec())
    );

    println!("-- RawArray");
    let raw_arr = RawArray::new(&seq).unwrap();
    run("raw_running_sums", &raw_arr);
    println!("after: {}", fmt(&raw_arr.to_vec()));
    println!("write [7, 8] at 8: {}", fmt(&raw_arr.write(8, &[7, 8])));
    println!("last three: {}", fmt(&raw_arr.read(7, 3)));

    println!("-- errors");
    println!("arr[10]: {}", fmt(&arr.get(10)));
    println!("arr[10] = 1: {}", fmt(&arr.set(10, 1)));
    println!("read 9..11: {}", fmt(&arr.read(9, 2)));
    println!("write 9..11: {}", fmt(&arr.write(9, &[1, 2])));
    println!("read at usize::MAX: {}", fmt(&arr.read(usize::MAX, 2)));
    println!(
        "too large: {}",
        fmt(&RawArray::<u64>::zeros(usize::MAX / 4).map(|_| ()))
    );
    println!(
        "beyond message: {}",
        fmt(&RawArray::<u8>::zeros(65 << 20).map(|_| ()))
    );
}
