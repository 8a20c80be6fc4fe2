//! Compiles the wire protocols in `proto/` with a pure-Rust protobuf compiler, so building
//! needs no `protoc` on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "tfplugin6.proto",
        "plugin/grpc_controller.proto",
        "plugin/grpc_stdio.proto",
        "plugin/grpc_broker.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed=proto/{file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // RPCs we do not implement answer `Unimplemented`, which Terraform tolerates where optional.
        .generate_default_stubs(true)
        .compile_fds(descriptors)?;
    Ok(())
}
