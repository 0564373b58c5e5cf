// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "VFIOKit",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "PCI", targets: ["PCI"]),
        .library(name: "VFIOKit", targets: ["VFIOKit"]),
        .library(name: "VFIOMock", targets: ["VFIOMock"]),
        .library(name: "VFIOHost", targets: ["VFIOHost"]),
        .library(name: "VFIODrivers", targets: ["VFIODrivers"]),
        .library(name: "VFIOExport", targets: ["VFIOExport"]),
        .library(name: "VFIODaemon", targets: ["VFIODaemon"]),
        .executable(name: "vfiokit", targets: ["vfiokit"]),
        .executable(name: "vfiokit-bench", targets: ["vfiokit-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/ordo-one/malloc-interposer", from: "1.6.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C shims: only what Swift cannot express.
        .target(name: "CVFIO", path: "CShims/CVFIO"),
        .systemLibrary(
            name: "CPCIAccess", path: "CShims/CPCIAccess", pkgConfig: "libpci",
            providers: [.apt(["libpci-dev"])]),
        .systemLibrary(
            name: "CUdev", path: "CShims/CUdev", pkgConfig: "libudev",
            providers: [.apt(["libudev-dev"])]),
        .target(name: "CBenchReference", dependencies: ["CVFIO"], path: "CShims/CBenchReference"),
        .target(name: "CUring", path: "CShims/CUring", linkerSettings: [.linkedLibrary("uring")]),

        // The pure PCI model: no system calls.
        .target(name: "PCI"),
        // The result output the measuring commands of both executables share.
        .target(name: "CLIOutput"),
        // The framework a driver author imports.
        .target(
            name: "VFIOKit",
            dependencies: [
                "PCI", "CVFIO",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // A model of the kernel's VFIO, served at the framework's system-call seam.
        .target(name: "VFIOMock", dependencies: ["VFIOKit", "PCI", "CVFIO"]),
        // The conformance scenarios: one ioctl list, run against the mock and the real kernel.
        .target(name: "VFIOConformance", dependencies: ["VFIOKit", "VFIOMock", "PCI", "CVFIO"]),
        // Discovery, binding and udev: where the host is touched.
        .target(name: "VFIOHost", dependencies: ["VFIOKit", "PCI", "CPCIAccess", "CUdev"]),
        // Sample drivers, written on VFIOKit's public API only.
        .target(name: "VFIODrivers", dependencies: ["VFIOKit", "PCI"]),
        // Block export: NVMe namespaces served to clients (the core, and the NBD and ublk frontends).
        .target(name: "VFIOExport", dependencies: ["VFIOKit", "VFIODrivers", "CUring"]),
        // The driver daemon behind `vfiokit run`: hosts drivers on devices until told to stop.
        .target(
            name: "VFIODaemon",
            dependencies: [
                "PCI", "VFIOKit", "VFIOHost", "VFIODrivers", "VFIOExport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]),
        .executableTarget(
            name: "vfiokit",
            dependencies: [
                "PCI", "VFIOKit", "VFIOMock", "VFIOHost", "VFIODrivers", "VFIODaemon", "VFIOConformance", "CLIOutput", "NVMeWorkloads",
                "VFIOExport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            plugins: ["VersionPlugin"]),
        // `vfiokit --version`: VERSION and the git commit, written at build time (Plugins/VersionPlugin).
        .plugin(name: "VersionPlugin", capability: .buildTool()),
        // The NVMe benchmark workload both executables run.
        .target(name: "NVMeWorkloads", dependencies: ["VFIODrivers", "VFIOKit", "CLIOutput"]),
        // The hot-path benchmarks, with the C references and the malloc interposer they need,
        // kept out of the binary users run.
        .executableTarget(
            name: "vfiokit-bench",
            dependencies: [
                "PCI", "VFIOKit", "VFIOMock", "VFIODrivers", "CBenchReference", "CLIOutput", "NVMeWorkloads",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "MallocInterposerSwift", package: "malloc-interposer"),
            ]),

        // The README's "Writing a driver" snippets, built and run by ExampleTests.
        .target(name: "DoorbellDriver", dependencies: ["VFIOKit", "VFIOMock"], path: "Examples/DoorbellDriver"),

        .testTarget(name: "PCITests", dependencies: ["PCI"]),
        .testTarget(name: "VFIOMockTests", dependencies: ["VFIOMock", "VFIOKit", "CVFIO"]),
        // What more than one test target uses.
        .target(name: "TestSupport", dependencies: [.product(name: "Logging", package: "swift-log")], path: "Tests/TestSupport"),
        .testTarget(name: "VFIOKitTests", dependencies: ["VFIOKit", "VFIOMock", "VFIODrivers", "CVFIO", "TestSupport"]),
        .testTarget(name: "VFIOHostTests", dependencies: ["VFIOHost", "VFIOMock"]),
        .testTarget(
            name: "VFIODaemonTests",
            dependencies: [
                "VFIODaemon", "VFIOMock", "VFIODrivers", "VFIOKit", "VFIOHost", "TestSupport",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(name: "ConformanceTests", dependencies: ["VFIOConformance", "VFIOMock", "PCI"], exclude: ["Records"]),
        .testTarget(name: "CLITests", dependencies: ["vfiokit", "vfiokit-bench"]),
        .testTarget(name: "ExampleTests", dependencies: ["DoorbellDriver"]),
        .testTarget(name: "VFIOExportTests", dependencies: ["VFIOExport", "VFIODrivers", "VFIOMock", "VFIOKit", "CUring"]),
    ]
)
