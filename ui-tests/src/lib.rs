//! trybuild harness lives in tests/.
