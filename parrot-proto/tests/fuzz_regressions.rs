//! Inputs the fuzz targets once failed on, run as plain tests so they stay fixed.

#[test]
fn endpoint_inputs_found_by_fuzzing_keep_every_invariant() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz_regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("regression directory") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "bin") {
            let data = std::fs::read(&path).expect("input");
            parrot_proto::fuzzing::endpoint(&data);
            n += 1;
        }
    }
    assert!(n > 0, "no inputs found in {dir}");
}
