//! The test harness can start and seed a sandbox, and the seeded drctl.yaml validates.
mod common;

#[test]
fn seeded_environment_validates() {
    let sb = common::sandbox::Sandbox::start();
    let st = sb.state();
    assert!(st.is_object(), "state: {st}");
    let out = common::run(
        common::drctl(sb.dir.path())
            .args(["validate"])
            .arg(sb.env_file()),
    );
    assert!(out.status.success(), "{}", common::text(&out));
}
