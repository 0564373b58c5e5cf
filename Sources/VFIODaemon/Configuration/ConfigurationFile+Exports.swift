/// The `exports` key of a device entry: a list of ``ExportSpecification`` strings, the same
/// form as `vfiokit run --export`.
extension ConfigurationFile {
    /// The entry's exports, parsed and checked; an error names the device and the export.
    func parsedExports(_ entry: Entry, path: String) throws(DaemonError) -> [ExportSpecification] {
        var exports: [ExportSpecification] = []
        do throws(ExportSpecificationError) {
            for text in entry.exports ?? [] { exports.append(try ExportSpecification(parsing: text)) }
            try ExportSpecification.checkDistinct(exports)
        } catch {
            throw .badConfiguration(path: path, reason: "device \(entry.address): \(error)")
        }
        return exports
    }

    /// `exports` as the file writes them; nil for none, so a file without exports has no key.
    static func exportStrings(_ exports: [ExportSpecification]) -> [String]? {
        exports.isEmpty ? nil : exports.map(\.description)
    }
}
