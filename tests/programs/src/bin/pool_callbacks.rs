//! CPython `_TestPool` (`test_map_async`, `test_map_async_callbacks`, `test_starmap_async`,
//! `test_async_error_callback`, `test_terminate`) and `_TestInitializers`
//! (`test_pool_initializer`), in our words: `map_async`/`starmap_async`, `callback` and
//! `error_callback` (run in the caller), and `initializer`/`initargs` (with a queue among
//! them); and, as CPython's `MapResult`, a `map_async` ready at its first failed chunk while
//! other chunks still run.

use programs::show;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use wasmproc_guest::{Callbacks, Error, Event, Pool, Queue, current_process, pool_fn, targets};

thread_local! {
    /// Set by the initializer in each worker.
    static TAG: Cell<i64> = const { Cell::new(0) };
    /// The queue the initializer was given, kept open for the worker's life.
    static INITS: RefCell<Option<Queue<String>>> = const { RefCell::new(None) };
    /// The event the slow `gated` call waits for.
    static GATE: RefCell<Option<Event>> = const { RefCell::new(None) };
}

fn sqr(x: i64) -> i64 {
    x * x
}

fn mul(a: i64, b: i64) -> i64 {
    a * b
}

/// As Python's `int(s)`.
fn parse(s: String) -> i64 {
    s.parse()
        .unwrap_or_else(|_| panic!("invalid literal for int() with base 10: {s:?}"))
}

fn raising() -> i64 {
    panic!("KeyError: 'key'");
}

fn slow(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// The initializer: remembers `tag`, and tells `inits` which worker ran it.
fn init(tag: i64, inits: Queue<String>) {
    TAG.set(tag);
    inits
        .put(&current_process().name().unwrap())
        .expect("the initializer's put");
    INITS.with(|q| *q.borrow_mut() = Some(inits));
}

fn tagged(x: i64) -> (i64, i64) {
    (TAG.get(), x)
}

/// The initializer of the gated pool: keeps `gate`.
fn keep_gate(gate: Event) {
    GATE.with(|g| *g.borrow_mut() = Some(gate));
}

/// 0 fails at once; anything else returns once the gate is open (at most a minute).
fn gated(x: i64) -> i64 {
    if x == 0 {
        panic!("KeyError: 'key'");
    }
    let gate = GATE
        .with(|g| g.borrow().clone())
        .expect("the initializer ran");
    assert!(
        gate.wait(Duration::from_secs(60)).unwrap(),
        "the gate never opened"
    );
    x
}

targets![; pool: sqr, mul, parse, raising, slow, init, tagged, keep_gate, gated];

/// What the callbacks of one submission were called with, in order.
type Calls = Rc<RefCell<Vec<String>>>;

fn recorder<R: std::fmt::Debug + 'static>(calls: &Calls) -> Callbacks<R> {
    let (ok, err) = (calls.clone(), calls.clone());
    Callbacks::new()
        .callback(move |v: R| {
            let me = current_process().name().unwrap();
            ok.borrow_mut().push(format!("callback {v:?} in {me}"));
        })
        .error_callback(move |e: Error| {
            let panic = e
                .message()
                .contains("invalid literal for int() with base 10: \"a\"")
                || e.message().contains("KeyError: 'key'");
            err.borrow_mut().push(format!(
                "error_callback {:?}, mentions the panic: {panic}",
                e.kind()
            ));
        })
}

fn main() {
    let pool = Pool::new(2).unwrap();

    println!("-- map_async");
    let r = pool.map_async(pool_fn!(sqr), 0..10).unwrap();
    show!("get", r.get(None));
    println!("ready: {}", r.ready());
    show!("successful", r.successful());
    let r = pool
        .map_async_with(pool_fn!(sqr), 0..10, Some(3), Callbacks::new())
        .unwrap();
    show!("get, chunksize 3", r.get(None));
    let r = pool.map_async(pool_fn!(sqr), Vec::<i64>::new()).unwrap();
    show!("get, no items", r.get(None));
    show!(
        "chunksize 0",
        pool.map_async_with(pool_fn!(sqr), 0..3, Some(0), Callbacks::new())
            .map(|_| ())
    );

    println!("-- map_async callbacks");
    let calls = Calls::default();
    let r = pool
        .map_async_with(pool_fn!(parse), ["1".to_string()], None, recorder(&calls))
        .unwrap();
    show!("wait", r.wait(None));
    println!("calls: {:?}", calls.borrow());
    calls.borrow_mut().clear();
    let items = ["2".to_string(), "a".to_string(), "3".to_string()];
    let r = pool
        .map_async_with(pool_fn!(parse), items, Some(1), recorder(&calls))
        .unwrap();
    show!("wait", r.wait(None));
    println!("calls: {:?}", calls.borrow());
    show!("successful", r.successful());
    match r.get(None) {
        Ok(v) => println!("get: {v:?}"),
        Err(e) => println!(
            "get: error {:?}, mentions the panic: {}",
            e.kind(),
            e.message().contains("invalid literal")
        ),
    }

    println!("-- starmap_async");
    let pairs: Vec<(i64, i64)> = (0..10).map(|i| (i, i + 1)).collect();
    let r = pool.starmap_async(pool_fn!(mul), pairs).unwrap();
    show!("get", r.get(None));

    println!("-- apply_async callback");
    let calls = Calls::default();
    let r = pool
        .apply_async_with(pool_fn!(sqr), 7, recorder(&calls))
        .unwrap();
    show!("get", r.get(None));
    println!("calls: {:?}", calls.borrow());
    show!("get again", r.get(None));
    println!("calls after get again: {}", calls.borrow().len());

    println!("-- callbacks of dropped results run by close and join");
    let got = Rc::new(RefCell::new(Vec::new()));
    for i in 0..5 {
        let got = got.clone();
        let cb = Callbacks::new().callback(move |v: i64| got.borrow_mut().push(v));
        drop(pool.apply_async_with(pool_fn!(sqr), i, cb).unwrap());
    }
    let calls = Calls::default();
    drop(
        pool.apply_async_with(pool_fn!(raising), (), recorder(&calls))
            .unwrap(),
    );
    show!("close", pool.close());
    show!("join", pool.join());
    got.borrow_mut().sort();
    println!("callbacks got: {:?}", got.borrow());
    println!("error_callback: {:?}", calls.borrow());

    println!("-- terminate calls no callback");
    let pool = Pool::new(1).unwrap();
    let calls = Calls::default();
    let r = pool
        .apply_async_with(pool_fn!(slow), 3_600_000, recorder(&calls))
        .unwrap();
    show!("terminate", pool.terminate());
    show!("get", r.get(None));
    println!("calls: {:?}", calls.borrow());

    println!("-- initializer");
    let inits = Queue::<String>::new().unwrap();
    let pool = Pool::builder()
        .processes(2)
        .initializer(pool_fn!(init), (7, inits.clone()))
        .build()
        .unwrap();
    let tags: Vec<i64> = pool
        .map_async_with(pool_fn!(tagged), 0..8, Some(1), Callbacks::new())
        .unwrap()
        .get(None)
        .unwrap()
        .into_iter()
        .map(|(tag, _)| tag)
        .collect();
    println!("tags: {tags:?}");
    show!("close", pool.close());
    show!("join", pool.join());
    let mut names = Vec::new();
    while let Ok(name) = inits.get_nowait() {
        names.push(name);
    }
    println!(
        "initializer runs: {}, in distinct workers: {}",
        names.len(),
        names.iter().collect::<std::collections::HashSet<_>>().len()
    );

    println!("-- initializer in every replacement worker");
    let pool = Pool::builder()
        .processes(1)
        .maxtasksperchild(1)
        .initializer(pool_fn!(init), (9, inits.clone()))
        .build()
        .unwrap();
    for i in 0..3 {
        show!(format!("apply {i}"), pool.apply(pool_fn!(tagged), i));
    }
    drop(pool);

    println!("-- initargs that cannot be passed");
    let closed = Queue::<String>::new().unwrap();
    closed.close();
    show!(
        "build",
        Pool::builder()
            .processes(1)
            .initializer(pool_fn!(init), (1, closed))
            .build()
            .map(|_| ())
    );

    println!("-- map_async ready at the first failure");
    let gate = Event::new().unwrap();
    let pool = Pool::builder()
        .processes(2)
        .initializer(pool_fn!(keep_gate), gate.clone())
        .build()
        .unwrap();
    let calls = Calls::default();
    let r = pool
        .map_async_with(pool_fn!(gated), [0, 1], Some(1), recorder(&calls))
        .unwrap();
    // Call 1 waits for the gate, which opens only after this: the result is ready without it.
    match r.get(Duration::from_secs(30)) {
        Ok(v) => println!("get: {v:?}"),
        Err(e) => println!(
            "get, the slow call still running: error {:?}, mentions the panic: {}",
            e.kind(),
            e.message().contains("KeyError")
        ),
    }
    println!("ready: {}", r.ready());
    show!("successful", r.successful());
    println!("calls: {:?}", calls.borrow());
    show!("open the gate", gate.set());
    show!("close", pool.close());
    show!("join", pool.join());
    println!("calls after join: {}", calls.borrow().len());
}
