import Testing

/// `vfiokit context`: two simulated edu devices in one IOMMU context, on each IOMMU backend.
@Suite struct ContextCommandTests {
    @Test(arguments: ["legacy", "iommufd"])
    func twoEdusShareOneContextAndOneBuffer(_ backend: String) throws {
        let result = try runVFIOKit(["context", "--backend", backend, "--log-level", "info"])
        #expect(result.status == 0, "stderr: \(result.error)")
        #expect(result.output.contains("ok   one context: 0000:00:04.0, 0000:00:05.0 in one"))
        #expect(result.output.contains("ok   shared buffer: 0000:00:04.0 wrote"))
        #expect(result.output.contains("context: 2 ok or skipped, 0 failed"))
        // --log-level info shows the framework's choices on stderr.
        #expect(result.error.contains("opened device") && result.error.contains("backend=\(backend)"))
    }

    @Test func withoutLogLevelTheFrameworkIsQuiet() throws {
        let result = try runVFIOKit(["context"])
        #expect(result.status == 0)
        #expect(result.error.isEmpty, "\(result.error)")
    }
}
