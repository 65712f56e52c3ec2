//! Generates the gRPC code for `proto/` (lnd's and tapd's services, clients and servers) when the
//! `node` feature is on. Without it (the fuzz build) nothing runs and no build dependency is
//! compiled: they are optional and enabled by the same feature.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=proto");
    // `feature = "node"` is set for the build script exactly when Cargo sets CARGO_FEATURE_NODE
    // in its environment. The compile-time form is the one that works here: the build
    // dependencies are optional, so without the feature the code naming them cannot compile.
    #[cfg(feature = "node")]
    if let Err(e) = node::compile() {
        // A build script reports failure by panicking; the message is what the user sees.
        panic!("compiling proto/ failed: {e}");
    }
}

#[cfg(feature = "node")]
mod node {
    use std::path::{Path, PathBuf};

    /// Where the `.proto` files live. Each is compiled with this directory as the include root,
    /// so imports read as upstream writes them (`import "lightning.proto"`,
    /// `import "rfqrpc/rfq.proto"`).
    const ROOT: &str = "proto";

    pub(super) fn compile() -> Result<(), Box<dyn std::error::Error>> {
        let mut protos = Vec::new();
        collect_protos(Path::new(ROOT), &mut protos)?;
        // Sorted so that the generated code does not depend on directory order.
        protos.sort();

        // The vendored protoc, handed to prost-build directly rather than through the PROTOC
        // environment variable: setting a variable in-process is `unsafe` in edition 2024, and
        // this way no system protoc is ever picked up.
        let mut config = prost_build::Config::new();
        config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
        tonic_prost_build::configure()
            .build_client(true)
            .build_server(true)
            // tonic's `connect(url)` helpers dial without TLS; tapgate builds its own pinned
            // channels, so they are not generated.
            .build_transport(false)
            .compile_with_config(config, &protos, &[PathBuf::from(ROOT)])?;
        Ok(())
    }

    /// Every `.proto` file under `dir`, recursively.
    fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                collect_protos(&path, out)?;
            } else if path.extension().is_some_and(|ext| ext == "proto") {
                out.push(path);
            }
        }
        Ok(())
    }
}
