//! The engine's calls do no heap allocation once the objective is built: counted with a
//! global allocator that tallies every allocation made on this test's thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use basin_nn::{FcnObjective, FcnSpec, Objective, all_examples};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn loss_gradient_and_hvp_do_not_allocate() {
    let spec = FcnSpec::paper(20);
    let n = 700;
    let x: Vec<f32> = (0..n * 20)
        .map(|i| ((i * 37) % 101) as f32 / 101.0)
        .collect();
    let y: Vec<u8> = (0..n).map(|i| (i % 3 == 0) as u8).collect();
    let mut obj = FcnObjective::<f32>::new(&spec, &x, &y).unwrap();
    let theta: Vec<f32> = spec.init(1);
    let v: Vec<f32> = spec.init(2);
    let (mut g, mut hv) = (vec![0.0; spec.n_params()], vec![0.0; spec.n_params()]);
    let all = all_examples(n);
    let shuffled: Vec<usize> = (0..n).map(|i| (i * 389) % n).collect();
    // Warm up: faer may set up per-thread scratch space on its first product.
    obj.loss_grad(&theta, &shuffled[..32], &mut g);
    obj.hvp(&theta, &all, &v, &mut hv);
    let before = allocations();
    for batch in shuffled.chunks(32) {
        obj.loss_grad(&theta, batch, &mut g);
    }
    obj.loss(&theta, &all);
    obj.hvp(&theta, &all, &v, &mut hv);
    obj.hvp(&theta, &shuffled, &v, &mut hv);
    obj.count_errors(&theta, &all);
    assert_eq!(
        allocations() - before,
        0,
        "heap allocations in the engine's calls"
    );
}
