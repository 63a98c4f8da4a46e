// A state with 100 fields: no cap on the number of fields.
#![deny(warnings)]

use typed_sessions::{SessionState, TypedSession};

#[derive(SessionState)]
struct Wide {
    f0: u64,
    f1: u64,
    f2: u64,
    f3: u64,
    f4: u64,
    f5: u64,
    f6: u64,
    f7: u64,
    f8: u64,
    f9: u64,
    f10: u64,
    f11: u64,
    f12: u64,
    f13: u64,
    f14: u64,
    f15: u64,
    f16: u64,
    f17: u64,
    f18: u64,
    f19: u64,
    f20: u64,
    f21: u64,
    f22: u64,
    f23: u64,
    f24: u64,
    f25: u64,
    f26: u64,
    f27: u64,
    f28: u64,
    f29: u64,
    f30: u64,
    f31: u64,
    f32: u64,
    f33: u64,
    f34: u64,
    f35: u64,
    f36: u64,
    f37: u64,
    f38: u64,
    f39: u64,
    f40: u64,
    f41: u64,
    f42: u64,
    f43: u64,
    f44: u64,
    f45: u64,
    f46: u64,
    f47: u64,
    f48: u64,
    f49: u64,
    f50: u64,
    f51: u64,
    f52: u64,
    f53: u64,
    f54: u64,
    f55: u64,
    f56: u64,
    f57: u64,
    f58: u64,
    f59: u64,
    f60: u64,
    f61: u64,
    f62: u64,
    f63: u64,
    f64: u64,
    f65: u64,
    f66: u64,
    f67: u64,
    f68: u64,
    f69: u64,
    f70: u64,
    f71: u64,
    f72: u64,
    f73: u64,
    f74: u64,
    f75: u64,
    f76: u64,
    f77: u64,
    f78: u64,
    f79: u64,
    f80: u64,
    f81: u64,
    f82: u64,
    f83: u64,
    f84: u64,
    f85: u64,
    f86: u64,
    f87: u64,
    f88: u64,
    f89: u64,
    f90: u64,
    f91: u64,
    f92: u64,
    f93: u64,
    f94: u64,
    f95: u64,
    f96: u64,
    f97: u64,
    f98: u64,
    f99: u64,
}

async fn handler(mut session: TypedSession<Wide>) -> u64 {
    session.set_f0(0);
    session.set_f9(9);
    session.set_f18(18);
    session.set_f27(27);
    session.set_f36(36);
    session.set_f45(45);
    session.set_f54(54);
    session.set_f63(63);
    session.set_f72(72);
    session.set_f81(81);
    session.set_f90(90);
    session.set_f99(99);
    *session.f99_mut() += 1;
    session.take_f98() + *session.f0()
}

fn main() {
    assert_eq!(Wide::FIELDS.len(), 100);
    assert_eq!(Wide::FIELDS[99], "f99");
    let _ = handler;
}
