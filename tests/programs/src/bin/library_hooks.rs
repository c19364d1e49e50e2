//! A program that imports a host function of its embedder's own (`test:hooks/host-api`,
//! added by a linker hook), in its main process and in a child, and a target that spins
//! until the embedder's fuel ends it.

use wasmproc_guest::{Process, targets};

mod api {
    wit_bindgen::generate!({
        inline: "
            package test:hooks;

            interface host-api {
                /// The embedder's answer to `question`.
                answer: func(question: string) -> u32;
            }

            world extra {
                import host-api;
            }
        ",
    });
}

use api::test::hooks::host_api::answer;

fn ask() {
    println!("child asks: {}", answer("child"));
}

fn spin() {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

targets![ask, spin];

fn main() {
    println!("main asks: {}", answer("main"));
    println!("main asks again: {}", answer("main"));
    for target in ["ask", "spin"] {
        let p = Process::builder(target).name(target).build().unwrap();
        p.start().unwrap();
        p.join(None).unwrap();
        println!("{target} exitcode: {:?}", p.exitcode().unwrap());
    }
}
