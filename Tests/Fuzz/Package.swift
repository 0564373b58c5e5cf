// swift-tools-version: 6.1
// libFuzzer targets for VFIOKit's parsers, built by ./run with -sanitize=fuzzer,address.
// Every directory Sources/FuzzNAME is one target (FuzzConfigSpace runs as `config-space`):
// adding a target is adding a directory with one file that defines the test function and its
// `FuzzNAME_main` (see FuzzDump). LibFuzzerDriver starts libFuzzer from that main, because
// SwiftPM links an executable's entry point as `<module>_main`, and defines
// LLVMFuzzerTestOneInput once, handing each input to the target's test.
import Foundation
import PackageDescription

let root = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().deletingLastPathComponent()
// A path dependency's identity is its directory's name (main, or a worktree's).
let rootIdentity = root.lastPathComponent.lowercased()
let sources = URL(fileURLWithPath: Context.packageDirectory).appendingPathComponent("Sources").path
let names = ((try? FileManager.default.contentsOfDirectory(atPath: sources)) ?? []).filter { $0.hasPrefix("Fuzz") }.sorted()

let package = Package(
    name: "VFIOKitFuzz",
    dependencies: [.package(path: root.path)],
    targets: [.target(name: "LibFuzzerDriver")]
        + names.map { name in
            .executableTarget(
                name: name,
                dependencies: [
                    "LibFuzzerDriver",
                    .product(name: "PCI", package: rootIdentity), .product(name: "VFIOKit", package: rootIdentity),
                    .product(name: "VFIOMock", package: rootIdentity), .product(name: "VFIODaemon", package: rootIdentity),
                ])
        }
)
