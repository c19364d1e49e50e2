//! A trap inside a host call: a guest hands the host a string that points outside its
//! memory (through the raw import, as a hostile guest could). The call traps that guest
//! only; the host and a sibling go on.

use wasmproc_guest::{Process, current_process, targets};

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "wasmproc:process/process@0.1.0")]
unsafe extern "C" {
    #[link_name = "set-name"]
    fn raw_set_name(handle: i64, ptr: *const u8, len: usize, ret: *mut u8);
}

fn liar() {
    let me = current_process().handle();
    #[cfg(target_arch = "wasm32")]
    {
        let mut ret = [0u8; 16];
        // SAFETY: deliberately not safe for the host: the string lies about its memory.
        unsafe {
            raw_set_name(
                me as i64,
                0xffff_fff0usize as *const u8,
                4096,
                ret.as_mut_ptr(),
            )
        };
    }
    println!("liar survived, handle {me}");
}

fn sibling() {
    println!("sibling done");
}

targets![liar, sibling];

fn main() {
    let l = Process::new("liar", &()).unwrap();
    let s = Process::new("sibling", &()).unwrap();
    l.start().unwrap();
    s.start().unwrap();
    l.join(None).unwrap();
    s.join(None).unwrap();
    println!("liar exitcode: {:?}", l.exitcode().unwrap());
    println!("sibling exitcode: {:?}", s.exitcode().unwrap());
}
